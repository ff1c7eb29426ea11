"""Payment institutions (支付机构) and the consumer app (云闪付-style): wallets backed by a
reserve (备付金) at the PBOC, quick-pay top-ups and withdrawals through IBPS, cards of any
bank bound to a phone number, QR payments through the card switch, balances asked of the
issuers, and consumer vouchers (消费券) funded by a sponsor (docs/WALLETS.md)."""
