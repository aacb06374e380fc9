"""The contract's vocabulary as frozen dataclasses and enums; no I/O."""
