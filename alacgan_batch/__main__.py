"""`python -m alacgan_batch ...` (also what torchrun launches: `torchrun ... -m alacgan_batch train ...`)."""

from .cli import main

if __name__ == "__main__":
    main()
