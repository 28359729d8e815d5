"""`--params_override` strings: `a.b=v,c.d=w`, parsed as each field's type.

Works on any config made of dataclass sections (config.ExperimentConfig), so
it imports neither the schema nor TensorFlow.
"""

import dataclasses
import difflib
import json
import typing
from collections.abc import Callable, Sequence
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


def apply_overrides(cfg: T, overrides: list[str],
                    choices: Callable[[str], Sequence[str] | None] | None = None
                    ) -> T:
  """Applies `--params_override` strings to `cfg` in place and returns it.

  Args:
    cfg: the config to change.
    overrides: `a.b=v,c.d=w` strings.
    choices: `choices(key)` gives the values a field allows (None: any), so
      that a bad one is reported as coming from `--params_override`.

  Raises:
    ConfigError: unknown key (with the closest names), a value that does not
      parse as the field's type, or one the field does not allow.
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
    value = parse_value(key, raw, hint_type)
    allowed = choices(key) if choices else None
    if allowed is not None and value not in allowed:
      raise ConfigError(not_a_choice(key, value, allowed, "--params_override"))
    setattr(target, name, value)
  return cfg


def not_a_choice(key: str, value: Any, allowed: Sequence[str],
                 source: str) -> str:
  """The message for `key=value` outside `allowed`, set in `source`.

  Suggests the allowed value closest to the one given (`adamm` -> `adam`) and
  the fix where the value came from.
  """
  close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.5)
  hint = f" Did you mean {close[0]}?" if close else ""
  fix = f"--params_override={key}={close[0] if close else allowed[0]}"
  where = (f"pass {fix} instead" if source == "--params_override" else
           f"fix it there, or pass {fix}")
  return (f"{key}='{value}' is not one of: {', '.join(allowed)}.{hint} It "
          f"came from {source}: {where}.")


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


def set_from_dict(cfg: T, values: dict[str, Any], source: str | None = None,
                  choices: Callable[[str], Sequence[str] | None] | None = None
                  ) -> T:
  """Sets `cfg`'s fields from nested dicts such as config.json's.

  Args:
    cfg: the config to change.
    values: `{"train": {"steps": 100}, ...}`.
    source: the user's file the values came from: then an unknown key or a
      value outside `choices` is an error naming it. Without it, unknown keys
      are skipped (a run recorded by an older version).
    choices: as for `apply_overrides`.

  Raises:
    ConfigError: a value not of its field's type, or a section that is not a
      map (config.json may come from elsewhere: check before anything uses
      it); with `source`, also as said above.
  """
  sections = {f.name for f in dataclasses.fields(cfg)}
  for key, value in _flatten(values):
    section, _, name = key.rpartition(".")
    # Only through fields, as in apply_overrides: never `__class__`.
    target = cfg if not section else (
        getattr(cfg, section) if section in sections else None)
    known = dataclasses.is_dataclass(target) and name in {
        f.name for f in dataclasses.fields(target)}
    if known and dataclasses.is_dataclass(getattr(target, name)):
      raise ConfigError(f"Bad section {key}{_in(source)}: {value!r} is not a "
                        "map of field names to values.")
    if not known:
      if source:
        close = close_keys(key, all_keys(cfg))
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown config key '{key}' in {source}.{hint} "
                          "--list_params lists every field.")
      continue
    value = _checked(key, value, typing.get_type_hints(type(target))[name],
                     source)
    if source:
      allowed = choices(key) if choices else None
      if allowed is not None and value not in allowed:
        raise ConfigError(not_a_choice(key, value, allowed, source))
    setattr(target, name, value)
  return cfg


def _flatten(values: dict[str, Any]) -> list[tuple[str, Any]]:
  """`{"train": {"steps": 1}, "name": "x"}` -> [("train.steps", 1), ("name", "x")]."""
  pairs = []
  for key, value in values.items():
    if isinstance(value, dict):
      pairs.extend((f"{key}.{k}", v) for k, v in value.items())
    else:
      pairs.append((key, value))
  return pairs


def _in(source: str | None) -> str:
  return f" in {source}" if source else ""


def _checked(key: str, value: Any, hint, source: str | None) -> Any:
  """`value` read from a file for field `key` of type `hint` (an int is a
  float where a float goes); ConfigError if it is not of that type."""
  origin = typing.get_origin(hint)
  if origin is list and isinstance(value, list):
    (item,) = typing.get_args(hint)
    return [_checked(key, v, item, source) for v in value]
  if origin is dict and isinstance(value, dict):
    _, item = typing.get_args(hint)
    return {str(k): _checked(key, v, item, source) for k, v in value.items()}
  if hint is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if hint is str and isinstance(value, bool):
    # A field that was a bool and grew an "auto" (eval.export_best): older
    # config.json files still load.
    return "true" if value else "false"
  if origin is None and isinstance(value, hint) and \
      (hint is bool or not isinstance(value, bool)):
    return value
  if not source:  # A recorded config.json: its caller names the file.
    raise ConfigError(f"Bad value for {key}: {value!r} is not "
                      f"{_type_words(hint)}.")
  raise ConfigError(f"Bad value for {key} in {source}: {json.dumps(value)} "
                    f"is not {_type_words(hint)}; write it as "
                    f"{json.dumps(parse_value(key, _example(hint), hint))}.")
