"""A Typer app with one command: no mltrail import."""

import typer


def main(lr: float = 0.01, layers: int = 2, name: str = "baseline") -> None:
    print(f"{name}: lr={lr} layers={layers}")


if __name__ == "__main__":
    typer.run(main)
