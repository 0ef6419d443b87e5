"""A Click app with a group and a subcommand: no mltrail import."""

import click


@click.group()
@click.option("--verbose/--quiet", default=False)
def cli(verbose: bool) -> None:
    """Train things."""


@cli.command()
@click.option("--lr", type=float, default=0.1)
@click.option("--epochs", type=int, default=3)
@click.option("--api-key", default="secret-abc")
def train(lr: float, epochs: int, api_key: str) -> None:
    for epoch in range(epochs):
        print(f"epoch {epoch}: loss {lr / (epoch + 1):.4f}")


if __name__ == "__main__":
    cli()
