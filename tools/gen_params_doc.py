"""Write docs/PARAMETERS.md from the parameter registry (src/qingsuan/params.py)."""

from pathlib import Path

from qingsuan.params import markdown

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "PARAMETERS.md"
    target.write_text(markdown(), encoding="utf-8")
    print(f"wrote {target}")
