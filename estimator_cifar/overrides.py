"""`--params_override` strings: `a.b=v,c.d=w`, parsed as each field's type.

Works on any config made of dataclass sections (config.ExperimentConfig), so
it imports neither the schema nor TensorFlow.
"""

import dataclasses
import difflib
import typing
from typing import Any, TypeVar

from estimator_cifar.errors import ConfigError

# Short names people type from habit, and the config field they mean.
ABBREVIATIONS = {"lr": "learning_rate", "bs": "batch_size",
                 "wd": "weight_decay", "batch": "batch_size"}

T = TypeVar("T")


def split_overrides(overrides: list[str]) -> list[tuple[str, str]]:
  """Splits `a.b=v,c.d=w` strings into (key, value) pairs.

  A comma-separated piece without `=` continues the previous value, so list
  values need no quoting: `schedule.boundaries_epochs=91,136,train.steps=5`.
  Brackets may group a list: `x=[1,2]`.

  Raises:
    ConfigError: a piece before the first `key=` or with an empty key.
  """
  pairs: list[list[str]] = []
  for text in overrides:
    for piece in split_top_level_commas(text):
      if not piece.strip():
        continue
      key, sep, value = piece.partition("=")
      if sep and key.strip() and not any(c in key for c in "[]{}:"):
        pairs.append([key.strip(), value.strip()])
      elif pairs:
        pairs[-1][1] += "," + piece.strip()
      else:
        raise ConfigError(
            f"Malformed --params_override '{text}': '{piece}' is not of the "
            "form section.field=value. Example: "
            "--params_override=train.steps=100,optimizer.learning_rate=0.05")
  return [(k, v) for k, v in pairs]


def split_top_level_commas(text: str) -> list[str]:
  """Splits `text` at commas outside brackets and braces: `a=[1,2],b` -> 2."""
  pieces, depth, cur = [], 0, []
  for ch in text:
    if ch in "[{":
      depth += 1
    elif ch in "]}":
      depth = max(0, depth - 1)
    if ch == "," and depth == 0:
      pieces.append("".join(cur))
      cur = []
    else:
      cur.append(ch)
  pieces.append("".join(cur))
  return pieces


def all_keys(cfg) -> list[str]:
  """Every dotted name an override can set, e.g. `train.steps`."""
  keys = []
  for f in dataclasses.fields(cfg):
    value = getattr(cfg, f.name)
    if dataclasses.is_dataclass(value):
      keys.extend(f"{f.name}.{sub.name}" for sub in dataclasses.fields(value))
    else:
      keys.append(f.name)
  return keys


def apply_overrides(cfg: T, overrides: list[str]) -> T:
  """Applies `--params_override` strings to `cfg` in place and returns it.

  Raises:
    ConfigError: unknown key (with the closest names) or a value that does not
      parse as the field's type.
  """
  for key, raw in split_overrides(overrides):
    section, _, name = key.rpartition(".")
    # Only through fields: `__class__.name` must not reach the class object.
    sections = {f.name for f in dataclasses.fields(cfg)}
    target = cfg if not section else (
        getattr(cfg, section) if section in sections else None)
    if target is None or not dataclasses.is_dataclass(target) or \
        name not in {f.name for f in dataclasses.fields(target)} or \
        dataclasses.is_dataclass(getattr(target, name)):
      close = close_keys(key, all_keys(cfg))
      hint = (f" Did you mean {', '.join(close)}?" if close else
              " Run with --list_params to see every field.")
      raise ConfigError(f"Unknown config key '{key}' in --params_override.{hint}")
    hint_type = typing.get_type_hints(type(target))[name]
    setattr(target, name, parse_value(key, raw, hint_type))
  return cfg


def close_keys(key: str, keys: list[str]) -> list[str]:
  """The keys closest to `key`, its field name's abbreviation (lr) expanded."""
  section, dot, name = key.rpartition(".")
  expanded = section + dot + ABBREVIATIONS.get(name.lower(), name)
  return difflib.get_close_matches(expanded, keys, n=3, cutoff=0.5)


def parse_value(key: str, raw: str, hint) -> Any:
  """Parses `raw` as the type `hint` of field `key`; ConfigError if it can't."""
  text = raw.strip()
  origin = typing.get_origin(hint)
  try:
    if origin is list:
      (item,) = typing.get_args(hint)
      body = text[1:-1] if text.startswith("[") and text.endswith("]") else text
      return [_parse_scalar(p.strip(), item) for p in body.split(",") if p.strip()]
    if origin is dict:
      _, item = typing.get_args(hint)
      body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
      out = {}
      for pair in (p for p in body.split(",") if p.strip()):
        k, sep, v = pair.rpartition(":")
        if not sep or not k.strip():
          raise ValueError(f"'{pair}' is not key:value")
        out[k.strip()] = _parse_scalar(v.strip(), item)
      return out
    return _parse_scalar(text, hint)
  except ValueError as e:
    raise ConfigError(
        f"Bad value for {key}: '{raw}' is not {_type_words(hint)} ({e}). "
        f"Example: --params_override={key}={_example(hint)}") from None


def _parse_scalar(text: str, typ):
  if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
    text = text[1:-1]
  if typ is bool:
    low = text.lower()
    if low in ("true", "1", "yes", "on"):
      return True
    if low in ("false", "0", "no", "off"):
      return False
    raise ValueError("expected true or false")
  if typ is int:
    return int(text)
  if typ is float:
    return float(text)
  return text


def _type_words(hint) -> str:
  origin = typing.get_origin(hint)
  if origin is list:
    return f"a list of {_type_words(typing.get_args(hint)[0])} values"
  if origin is dict:
    return f"a map of name:{_type_words(typing.get_args(hint)[1])} pairs"
  return {int: "an integer", float: "a number", bool: "true or false",
          str: "a string"}.get(hint, str(hint))


def _example(hint) -> str:
  origin = typing.get_origin(hint)
  if origin is list:
    return "[" + ",".join([_example(typing.get_args(hint)[0])] * 2) + "]"
  if origin is dict:
    return "name:" + _example(typing.get_args(hint)[1])
  return {int: "100", float: "0.1", bool: "true", str: "value"}.get(hint, "")


def set_from_dict(cfg: T, values: dict[str, Any]) -> T:
  """Sets `cfg`'s fields from nested dicts (config.json); unknown keys skip.

  Raises:
    ConfigError: a section that is not a dict, or a value not of its field's
      type (config.json is a file from elsewhere: check before anything uses it).
  """
  hints = typing.get_type_hints(type(cfg))
  for f in dataclasses.fields(cfg):
    if f.name not in values:
      continue
    current = getattr(cfg, f.name)
    if dataclasses.is_dataclass(current):
      if not isinstance(values[f.name], dict):
        raise ConfigError(f"Bad section {f.name}: {values[f.name]!r} is not "
                          "a map of field names to values.")
      section_hints = typing.get_type_hints(type(current))
      for k, v in values[f.name].items():
        if k in section_hints:
          setattr(current, k, _typed(f"{f.name}.{k}", v, section_hints[k]))
    else:
      setattr(cfg, f.name, _typed(f.name, values[f.name], hints[f.name]))
  return cfg


def _typed(key: str, value: Any, hint) -> Any:
  """A JSON `value` as field `key`'s type `hint`; ConfigError if it is not."""
  origin = typing.get_origin(hint)
  if origin is list and isinstance(value, list):
    (item,) = typing.get_args(hint)
    return [_typed(key, v, item) for v in value]
  if origin is dict and isinstance(value, dict):
    _, item = typing.get_args(hint)
    return {k: _typed(key, v, item) for k, v in value.items()}
  if hint is float and type(value) is int:  # JSON writes 1.0 as 1 at times.
    return float(value)
  if origin is None and type(value) is hint:
    return value
  raise ConfigError(f"Bad value for {key}: {value!r} is not "
                    f"{_type_words(hint)}.")
