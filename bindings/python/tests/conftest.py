import pathlib

REPO = pathlib.Path(__file__).resolve().parents[3]
