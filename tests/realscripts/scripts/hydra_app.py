"""A Hydra app with a config group and overrides: no mltrail import."""

import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    score = cfg.model.width * cfg.lr
    print(f"width={cfg.model.width} lr={cfg.lr} score={score:.6f}")
    with open("result.json", "w") as f:
        json.dump({"score": score}, f)


if __name__ == "__main__":
    main()
