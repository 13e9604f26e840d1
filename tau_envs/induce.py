"""Window-level findings of the honest judge: instructions induced from many episodes' evidence.

One episode says *what* went wrong; the window says *when*. For each kind of write (tool, and what
it changed) the judge gathers instances from the readable window:

- ``expected``: every expected write of every task in the window (what should be done),
- ``unexpected``: writes the agent made that no expected write pairs with (what should not),
- ``refused``: expected writes the agent refused or never made,
- ``different``: writes with the wrong arguments, and ``error``: tool calls the tool refused,

and describes each record a write touches by *features*: the record's own small-vocabulary fields
(a field with at most :data:`SMALL_VOCAB` values in the database: cabin, status, insurance), those
of its owner (membership), whether it belongs to the conversation's user, how many items its
lists hold (passengers), how a numeric argument moves a field (bags added or removed), and how
long ago a record was stamped (``created_at`` against the tools' clock, in buckets of 24 hours and 7
days: "it was created less than 24 hours ago").

A feature whose values never overlap between the unexpected writes and the expected ones becomes a
prohibition ("Only change the flights of a reservation when its cabin is economy or business; never
when its cabin is basic economy."); one that separates the refused writes from the ones done
becomes a permission; an unexpected write where the user's request names another kind of write on
the same record ("return" where the agent cancelled) is also an unexpected instance of the kind
asked for (the agent did it another way because that one was not allowed); several values that
cover every expected write, none holding for an
unexpected one, become a disjunction; wrong arguments become the value they should have had (per
list item when the expected amount is a multiple of a list size, one of the values the expected
writes use, the whole list, the user's choice for a payment field); a tool error is passed on.

Each suggestion is an instruction in the judge's own words, built only from the tasks' expected
actions, the initial database, the tool vocabulary and the conversations. It never reads the
policy, the rule catalogue, a task's intent or the simulated model's notes, and can be wrong: a
coincidence in a small window makes a spurious feature, which the offline gate then rejects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tau_envs.evidence import ActionDiff, Call, Evidence, field_diffs, observed

SMALL_VOCAB = 6  # a field with at most this many distinct values in its table is a category
MIN_COUNT_SUPPORT = 3  # expected writes needed before a count bound is suggested (fewer: coincidence)

# tool -> (what the agent does, in the base form, with "{noun}" for the record; the record's noun)
_DO: Mapping[str, tuple[str, str]] = {
    "cancel_reservation": ("cancel a reservation", "reservation"),
    "book_reservation": ("book a new reservation", "user"),
    "update_reservation_flights": ("change the flights of a reservation", "reservation"),
    "update_reservation_baggages": ("change the checked bags of a reservation", "reservation"),
    "update_reservation_passengers": ("change the passengers of a reservation", "reservation"),
    "send_certificate": ("send a certificate as compensation", "user"),
    "cancel_pending_order": ("cancel an order", "order"),
    "return_delivered_order_items": ("return items of an order for a refund", "order"),
    "exchange_delivered_order_items": ("exchange items of an order", "order"),
    "modify_pending_order_items": ("modify the items of an order", "order"),
    "modify_pending_order_address": ("change the shipping address of an order", "order"),
    "modify_pending_order_payment": ("change the payment method of an order", "order"),
    "modify_user_address": ("change the user's address", "user"),
}
_TABLE = {"reservation_id": "reservations", "order_id": "orders", "user_id": "users"}
_SKIP = ("name", "email", "dob", "address", "created_at")
_COST_TOOLS = ("update_reservation_flights", "exchange_delivered_order_items", "modify_pending_order_items")
_GERUND = {"cancel": "cancelling", "book": "booking", "change": "changing", "send": "sending", "return": "returning",
           "exchange": "exchanging", "modify": "modifying"}


_AGES = ((timedelta(hours=24), "less than 24 hours ago"), (timedelta(days=7), "1 to 7 days ago"))
_OLDER = "more than 7 days ago"


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def age(stamp: Any, now: datetime) -> str | None:
    """How long before ``now`` an ISO time stamp lies, as one of three buckets (``None``: not a past time)."""
    try:
        then = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    gap = now - then
    if gap < timedelta(0):
        return None
    return next((label for limit, label in _AGES if gap <= limit), _OLDER)


def gerund(phrase: str) -> str:
    """``"cancel an order"`` → ``"cancelling an order"``."""
    verb, _, rest = phrase.partition(" ")
    return f"{_GERUND.get(verb, verb + 'ing')} {rest}".strip()


def _either(values: Iterable[Any]) -> str:
    vals = [_words(v) for v in sorted({str(v) for v in values})]
    return vals[0] if len(vals) == 1 else ", ".join(vals[:-1]) + " or " + vals[-1]


@dataclass(kw_only=True)
class Instance:
    """One write of one episode and the features of the record it touches."""

    source: str  # expected | unexpected | refused | different | error
    tool: str
    did: str  # base-form phrase ("change the cabin of a reservation")
    trace_id: str
    feats: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)  # list sizes ("passengers": 2)
    diff: ActionDiff | None = None
    error: str = ""


class Featurizer:
    """Features of the records writes touch, from one domain's initial database."""

    def __init__(self, db: Mapping[str, Any], clock: str | None = None) -> None:
        self.db = db
        self.now = datetime.fromisoformat(clock) if clock else None
        self.small: dict[str, set[str]] = {}
        for table, rows in db.items():
            if not isinstance(rows, Mapping):
                continue
            values: dict[str, set[str]] = {}
            for row in rows.values():
                for k, v in (row.items() if isinstance(row, Mapping) else ()):
                    if isinstance(v, str | bool | int) and k not in _SKIP and not k.endswith("_id"):
                        values.setdefault(k, set()).add(str(v))
            self.small[table] = {k for k, vs in values.items() if 1 < len(vs) <= SMALL_VOCAB}
        self.parent: dict[str, tuple[str, str]] = {}  # a nested record's key -> (table, top-level key)
        for table, rows in db.items():
            for key, row in (rows.items() if isinstance(rows, Mapping) else ()):
                for v in (row.values() if isinstance(row, Mapping) else ()):
                    if isinstance(v, Mapping) and len(v) > 1 and all(isinstance(x, Mapping) for x in v.values()):
                        self.parent.update({str(inner): (table, str(key)) for inner in v})

    def same_parent(self, left: Sequence[Any], right: Sequence[Any]) -> str:
        """The table whose one record holds both items of every pair (``""`` when some pair differs)."""
        tables = set()
        for a, b in zip(left, right, strict=False):
            pa, pb = self.parent.get(str(a)), self.parent.get(str(b))
            if pa is None or pa != pb:
                return ""
            tables.add(pa[0])
        return tables.pop() if len(tables) == 1 and len(left) == len(right) else ""

    def record(self, args: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        for key in ("reservation_id", "order_id", "user_id"):
            table = _TABLE[key]
            rec = (self.db.get(table) or {}).get(str(args.get(key))) if args.get(key) else None
            if isinstance(rec, Mapping):
                return table, rec
        return "", {}

    def describe(
        self, tool: str, args: Mapping[str, Any], user_id: str, context: Sequence[Mapping[str, Any]] = ()
    ) -> tuple[str, dict[str, Any], dict[str, float]]:
        """``(did, categorical features, list sizes)`` of one write.

        ``context``: the records the conversation looked up before the write, most recent first. A
        write on a user (a certificate sent, a booking) names no reservation or order; the one it
        is about is the most recent one looked up, and its categories are features too ("the
        reservation's cabin").
        """
        did = _DO.get(tool, (f"call {_words(tool)}", ""))[0]
        table, rec = self.record(args)
        feats: dict[str, Any] = {}
        numbers: dict[str, float] = {}
        for k in sorted(self.small.get(table, ())):
            if k in rec:
                feats[f"its {_words(k)}"] = str(rec[k])
        for k, v in rec.items():
            if k.endswith("_at") and self.now is not None and (when := age(v, self.now)):
                feats[f"it was {_words(k.removesuffix('_at'))} {{}}"] = when
        owner = rec.get("user_id") if table != "users" else args.get("user_id")
        if owner and user_id:
            feats["owner"] = "the user" if str(owner) == user_id else "another user"
        user = (self.db.get("users") or {}).get(str(owner)) if owner and table != "users" else None
        for k in sorted(self.small.get("users", ())):
            if isinstance(user, Mapping) and k in user:
                feats[f"the user's {_words(k)}"] = str(user[k])
        if table == "users":
            about = next((r for obj in context if (r := self.record(obj))[0] not in ("", "users")), None)
            for k in sorted(self.small.get(about[0], ())) if about else ():
                if about and k in about[1]:
                    feats[f"the {_singular(about[0])}'s {_words(k)}"] = str(about[1][k])
        for k, v in rec.items():
            if isinstance(v, list | dict) and k not in _SKIP:
                numbers[_words(k)] = len(v)
        for k, v in args.items():
            if isinstance(v, list):
                numbers[_words(k)] = len(v)
            elif isinstance(v, int | float) and not isinstance(v, bool) and isinstance(rec.get(k), int | float):
                move = "added" if v > rec[k] else "removed" if v < rec[k] else "unchanged"
                feats[f"{_words(k)} moved"] = move
        if tool == "update_reservation_flights" and rec:
            flights = [f.get("flight_number") for f in rec.get("flights") or () if isinstance(f, Mapping)]
            new = [f.get("flight_number") for f in args.get("flights") or () if isinstance(f, Mapping)]
            if args.get("cabin") and args.get("cabin") != rec.get("cabin") and new == flights:
                did = "change the cabin of a reservation"
        return did, feats, numbers


def _looked_up(calls: Sequence[Call], before: int) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for c in calls:
        if before >= 0 and c.index >= before:
            break
        if (obj := observed(c)) is not None:
            out.append(obj)
    return out[::-1]  # most recent first


@dataclass(frozen=True, kw_only=True, slots=True)
class Suggestion:
    """An induced instruction, the evidence behind it, and the traces it speaks for."""

    hint: str
    because: str
    trace_ids: tuple[str, ...]


def _separators(bad: Sequence[Instance], good: Sequence[Instance]) -> list[tuple[str, set[str], set[str]]]:
    """Categorical features whose values never overlap between ``bad`` and ``good`` (best first)."""
    names = {k for i in bad for k in i.feats} & {k for i in good for k in i.feats}
    out = []
    for k in names:
        if not all(k in i.feats for i in bad):
            continue
        vb = {str(i.feats[k]) for i in bad}
        vg = {str(i.feats[k]) for i in good if k in i.feats}
        if vb and vg and not vb & vg:
            out.append((k, vb, vg))
    out.sort(key=lambda t: (_rank(t[0]), len(t[1]) + len(t[2]), t[0]))
    return out


def _rank(feature: str) -> int:
    """Which separating feature explains a write best (0 first).

    Whose record it is, then how the write itself moves a value (what the agent chose), then a
    category of the record (context, often a coincidence in a small window: "its cabin is basic
    economy" separated bag removals from additions by chance), then one of the record the
    conversation was about ("the reservation's cabin" for a certificate sent to its user).
    """
    if feature == "owner":
        return 0
    if feature.endswith(" moved"):
        return 1
    return 3 if feature.startswith("the ") and not feature.startswith("the user's ") else 2


def _cover(bad: Sequence[Instance], good: Sequence[Instance], limit: int = 3) -> list[tuple[str, str]]:
    """Up to ``limit`` (feature, value) conditions no bad write meets that cover every good one."""
    conds = {(k, str(v)) for i in good for k, v in i.feats.items() if k != "owner"}
    conds = {c for c in conds if not any(str(i.feats.get(c[0])) == c[1] for i in bad)}
    left, chosen = list(good), list[tuple[str, str]]()
    while left and conds and len(chosen) < limit:
        best = max(sorted(conds), key=lambda c: sum(str(i.feats.get(c[0])) == c[1] for i in left))
        hit = [i for i in left if str(i.feats.get(best[0])) == best[1]]
        if not hit:
            break
        chosen.append(best)
        conds.discard(best)
        left = [i for i in left if i not in hit]
    return chosen if not left and len(chosen) > 1 else []


def _when(k: str, values: Iterable[str]) -> str:
    """``"its cabin is basic economy"``; a feature with a ``{}`` slot takes the values there."""
    return k.format(_either(values)) if "{}" in k else f"{k} is {_either(values)}"


def _never(k: str, values: Iterable[str]) -> str:
    return f"never when {k.format(_either(values))}" if "{}" in k else f"never when it is {_either(values)}"


def prohibitions(bad: Sequence[Instance], good: Sequence[Instance], found_with: Sequence[str] = ()) -> list[Suggestion]:
    """What separates the unexpected writes of one kind from the expected ones.

    ``found_with``: the tools the window's conversations found the user's id with (named in the
    ownership instruction, so it says how the user is identified). When nothing explains every
    unexpected write (two mistakes of one kind: another user's reservation, and one too old to
    cancel), a feature value no expected write has explains a part of them; that part gets its own
    instruction and the rest is explained on its own.
    """
    if not bad or not good:
        return []
    out = _explain(bad, good, found_with)
    part = [] if out else _part(bad, good)
    if part:
        rest = [i for i in bad if all(i is not p for p in part)]
        out = [*_explain(part, good, found_with), *prohibitions(rest, good, found_with)]
    return out or _covered(bad, good)


def _part(bad: Sequence[Instance], good: Sequence[Instance]) -> list[Instance]:
    """The unexpected writes the best feature explains alone: values of it no expected write has.

    Best by rank (:func:`_rank`), then by how many it explains; a feature other than the owner must
    explain at least two (one write has many values no other write has, by chance).
    """
    best: tuple[tuple[int, int, str], list[Instance]] | None = None
    for k in sorted({k for i in bad for k in i.feats}):
        seen = {str(i.feats[k]) for i in good if k in i.feats}
        part = [i for i in bad if k in i.feats and str(i.feats[k]) not in seen]
        if not seen or not part or len(part) == len(bad) or (k != "owner" and len(part) < 2):
            continue
        key = (_rank(k), -len(part), k)
        if best is None or key < best[0]:
            best = (key, part)
    return best[1] if best else []


def _explain(bad: Sequence[Instance], good: Sequence[Instance], found_with: Sequence[str]) -> list[Suggestion]:
    """Separating features and count bounds."""
    did = bad[0].did
    ids = tuple(dict.fromkeys(i.trace_id for i in bad))
    seen = f"{len(bad)} unexpected and {len(good)} expected writes of this kind"
    out = []
    for k, vb, vg in _separators(bad, good)[:2]:
        if k == "owner":
            how = f" (found with {_either(found_with)})" if found_with else ""
            hint = (f"Only {did} that belongs to the user you are helping, identified by their verified user id"
                    f"{how}; never one that belongs to another user.")
        else:
            hint = f"Only {did} when {_when(k, vg)}; {_never(k, vb)}."
        out.append(Suggestion(hint=hint, because=f"{seen}: {k} separates them", trace_ids=ids))
    for name in sorted({n for i in bad for n in i.numbers} & {n for i in good for n in i.numbers}):
        nb = [i.numbers[name] for i in bad if name in i.numbers]
        ng = [i.numbers[name] for i in good if name in i.numbers]
        if len(nb) == len(bad) and len(ng) >= MIN_COUNT_SUPPORT and min(nb) > max(ng):
            top = f"{min(nb) - 1:g}"  # the loosest bound the window supports
            unit = _singular(name) if top == "1" else name
            hint = f"Only {did} when the number of {name} is at most {top}; never more than {top} {unit}."
            out.append(Suggestion(hint=hint, because=f"{seen}: more {name} in the unexpected ones", trace_ids=ids))
    return out


def _covered(bad: Sequence[Instance], good: Sequence[Instance]) -> list[Suggestion]:
    """A disjunction of conditions that covers every expected write and no unexpected one."""
    conds = _cover(bad, good)
    if not conds:
        return []
    did = bad[0].did
    either = ", or ".join(_when(k, (v,)) for k, v in conds)
    return [Suggestion(hint=f"Only {did} when {either}; otherwise do not {did.split(' ')[0]} it.",
                       because=f"{len(bad)} unexpected and {len(good)} expected writes of this kind: "
                               "each expected one meets one of these",
                       trace_ids=tuple(dict.fromkeys(i.trace_id for i in bad)))]


def permissions(refused: Sequence[Instance], done: Sequence[Instance]) -> list[Suggestion]:
    """What the expected writes the agent refused have that the ones it made lack."""
    if not refused:
        return []
    did = refused[0].did
    ids = tuple(dict.fromkeys(i.trace_id for i in refused))
    out = []
    for k, vr, _ in _separators(refused, done)[:2] if done else []:
        if k == "owner":
            continue
        hint = f"{gerund(did).capitalize()} is allowed even when {_when(k, vr)}: do it when the user asks for it."
        out.append(Suggestion(hint=hint, because=f"{len(refused)} refused, {len(done)} done: {k} separates them",
                              trace_ids=ids))
    if not out and not done:
        cats = ", ".join(_when(k, (v,)) for k, v in list(refused[0].feats.items())[:2] if k != "owner")
        hint = f"{gerund(did).capitalize()} is allowed even when {cats}: do it when the user asks for it."
        out.append(Suggestion(hint=hint, because=f"{len(refused)} refused, none done", trace_ids=ids))
    return out


def _per_item(inst: Instance, calls: Sequence[Call], expected: float, inst_actual: float) -> tuple[str, int] | None:
    """A list of the records looked up whose size the (larger) expected amount is a whole multiple of."""
    sizes = [(k, len(v)) for obj in _looked_up(calls, inst.diff.index if inst.diff else -1)
             for k, v in obj.items() if isinstance(v, list) and len(v) >= 2]
    sizes += [(k, int(n)) for k, n in inst.numbers.items() if n >= 2]
    for k, n in sizes:
        if expected and expected % n == 0 and expected > (inst_actual or 0):
            return k, n
    return None


def kinds(items: Any) -> Counter[str]:
    """How many items of a list of records are of each kind, by their id's prefix.

    ``[{"payment_id": "certificate_95"}, {"payment_id": "credit_card_75"}]`` → ``{"certificate": 1,
    "credit card": 1}``; an item without an ``*_id`` of the form ``<kind>_<digits>`` is not counted.
    """
    out: Counter[str] = Counter()
    for item in items if isinstance(items, list) else ():
        for k, v in item.items() if isinstance(item, Mapping) else ():
            if k.endswith("_id") and (m := re.fullmatch(r"([a-z_]+?)_\d+", str(v))):
                out[_words(m[1])] += 1
    return out


def _too_many(doing: str, what: str, actual: Any, most: Mapping[str, int]) -> str:
    """An instruction bounding a kind the agent used more of than any expected write did ("" when none)."""
    over = sorted(k for k, n in kinds(actual).items() if k in most and n > most[k])
    if not over:
        return ""
    bounds = [f"{most[k]} {k if most[k] == 1 else k + 's'}" for k in over]
    return f"When {doing}, the {what} may hold at most {_either(bounds)}; never more than {_either(bounds)}."


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def wrong_arguments(inst: Instance, calls: Sequence[Call], expected_values: Mapping[str, set[str]],
                    field_name: Mapping[str, str], fz: Featurizer | None = None,
                    most: Mapping[str, Mapping[str, int]] | None = None) -> list[Suggestion]:
    """What each wrong argument of one write should have been.

    ``most``: per list argument, the most items of each kind any expected write of this tool holds.
    """
    diff = inst.diff
    if diff is None:
        return []
    exp_args = diff.expected or {}
    doing = gerund(inst.did)
    out = []
    for k, actual, expected in diff.fields:
        what = field_name.get(k, _words(k))
        if isinstance(expected, int | float) and isinstance(actual, int | float) and not isinstance(expected, bool):
            per = _per_item(inst, calls, float(expected), float(actual))
            kept = [(f, v) for f, v in inst.feats.items() if f != "owner" and not f.endswith(" moved")][:4]
            cats = ", ".join(_when(f, (v,)) for f, v in kept)
            if per:
                each = float(expected) / per[1]
                hint = (f"When {doing}, the {what} should be {each:g} per {_singular(_words(per[0]))} "
                        f"({float(expected):g} for {per[1]}) instead of {float(actual):g}.")
            else:
                hint = (f"When {doing} and {cats or 'in general'}, the {what} should be {float(expected):g} "
                        f"instead of {float(actual):g}")
                gap = float(actual) - float(expected)
                hint += (f": {gap:g} extra should have been free of charge." if k.startswith("nonfree") and gap > 0
                         else ".")
        elif isinstance(expected, list) and isinstance(actual, list) and set(map(str, actual)) < set(map(str, expected)):  # noqa: E501
            hint = (f"Collect all the {what} to change into one list first, then call the tool once with the "
                    f"whole list when {doing}.")
        elif isinstance(expected, list) and (bound := _too_many(doing, what, actual, (most or {}).get(k, {}))):
            hint = bound
        elif isinstance(expected, list) and fz is not None and (pair := _paired(fz, k, expected, actual, exp_args)):
            other, table = pair
            hint = (f"When {doing}, each of the {what} must be another option of the same {_singular(table)} "
                    f"as the matching one of the {field_name.get(other, _words(other))}, never of a different "
                    f"{_singular(table)}.")
        elif "payment" in k:
            pays = "pay or receive the price difference" if inst.tool in _COST_TOOLS else "pay"
            hint = f"Ask the user which {what} from their profile should {pays} when {doing}; do not pick one yourself."
        elif len(expected_values.get(k, ())) >= 1 and isinstance(expected, str):
            hint = (f"When {doing}, the {what} must be one of: {_either(expected_values[k])}; "
                    f"ask the user which applies.")
        else:
            continue
        out.append(Suggestion(hint=hint, because=f"{what}: {actual!r} where {expected!r} was expected",
                              trace_ids=(inst.trace_id,)))
    return out


def _paired(
    fz: Featurizer, k: str, expected: list[Any], actual: Any, args: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(other argument, table)``: each expected item of ``k`` shares a record with its partner, the agent's not.

    The partner is the same position of another list argument of the expected write (an exchange's
    ``item_ids`` for its ``new_item_ids``); the record is a top-level one of ``table`` holding both.
    """
    for other, v in args.items():
        if other == k or not isinstance(v, list):
            continue
        table = fz.same_parent(v, expected)
        if table and not (isinstance(actual, list) and fz.same_parent(v, actual)):
            return other, table
    return None


def tool_errors(inst: Instance) -> list[Suggestion]:
    """A refused tool call of an expected write: the tool's own words, as an instruction."""
    if not inst.error:
        return []
    msg = re.sub(r"\s+", " ", re.sub(r"\S*\d{4,}\S*", "", inst.error.removeprefix("Error:"))).strip().rstrip(".")
    hint = f"Before {gerund(inst.did)}, check this, which the tool enforces: {msg}."
    return [Suggestion(hint=hint, because=f"the tool answered {inst.error!r}", trace_ids=(inst.trace_id,))]


@dataclass(kw_only=True)
class Episode:
    """One readable episode of the window.

    Its trace id, the task's user and expected writes, the evidence, whether the agent refused, and
    ``request``: the user's opening message.
    """

    trace_id: str
    user_id: str
    expected: Sequence[tuple[str, Mapping[str, Any]]]
    evidence: Evidence
    refused: bool = False
    request: str = ""


def asked_instead(request: str, tool: str) -> str:
    """The one other write on the same kind of record whose verb the user's request uses ("" if none).

    "I'd like to return item 1 from order #W2" when the agent called ``cancel_pending_order``:
    ``return_delivered_order_items``. A verb shared by several tools ("modify", "change") names none.
    """
    did, noun = _DO.get(tool, ("", ""))
    words = set(re.findall(r"[a-z]+", request.lower()))
    verb = did.partition(" ")[0]
    asked = {v: [t for t, (d, n) in _DO.items() if n == noun and d.partition(" ")[0] == v]
             for v in {d.partition(" ")[0] for t, (d, n) in _DO.items() if n == noun and t != tool} - {verb}}
    named = [ts for v, ts in asked.items() if {v, gerund(v).partition(" ")[0]} & words]
    return named[0][0] if len(named) == 1 and len(named[0]) == 1 else ""


def schema_enums(tools_info: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """``{tool: {argument: allowed values}}`` of the string arguments the tool schemas enumerate."""
    out: dict[str, dict[str, set[str]]] = {}
    for t in tools_info:
        inner = t.get("function")
        fn: Mapping[str, Any] = inner if isinstance(inner, Mapping) else t
        props = (fn.get("parameters") or {}).get("properties") or {}
        for arg, spec in props.items() if isinstance(props, Mapping) else ():
            enum = spec.get("enum") if isinstance(spec, Mapping) else None
            if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
                out.setdefault(str(fn.get("name")), {})[arg] = set(enum)
    return out


def induce(
    episodes: Sequence[Episode], db: Mapping[str, Any], field_name: Mapping[str, str], clock: str | None = None,
    enums: Mapping[str, Mapping[str, set[str]]] | None = None,
) -> list[Suggestion]:
    """Every suggestion the window supports (see the module docstring), strongest evidence first.

    ``clock``: the tools' current time (``ToolSet.clock``), for the age of time-stamped records;
    ``enums``: the values the tool schemas allow per string argument (``schema_enums``), which a
    wrong value's instruction lists beside those the window's expected writes use.
    """
    fz = Featurizer(db, clock)
    by_did: dict[str, dict[str, list[Instance]]] = {}
    values = {t: {a: set(v) for a, v in args.items()} for t, args in (enums or {}).items()}
    most: dict[str, dict[str, Counter[str]]] = {}  # tool -> list argument -> kind -> most items
    singles: list[Suggestion] = []

    def add(ep: Episode, source: str, tool: str, args: Mapping[str, Any], **kw: Any) -> Instance:
        diff = kw.get("diff")
        context = _looked_up(ep.evidence.calls, diff.index if diff is not None else -1)
        did, feats, numbers = fz.describe(tool, args, ep.user_id, context)
        inst = Instance(source=source, tool=tool, did=did, trace_id=ep.trace_id, feats=feats, numbers=numbers, **kw)
        by_did.setdefault(did, {}).setdefault(source, []).append(inst)
        return inst

    for ep in episodes:
        for tool, args in ep.expected:
            add(ep, "expected", tool, args)
            for k, v in args.items():
                if isinstance(v, str) and not k.endswith("_id"):
                    values.setdefault(tool, {}).setdefault(k, set()).add(v)
                elif isinstance(v, list):
                    most.setdefault(tool, {}).setdefault(k, Counter()).__ior__(kinds(v))
    for ep in episodes:
        missing = {d.name for d in ep.evidence.actions if d.kind == "missing"}
        for d in ep.evidence.actions:
            if d.kind == "unexpected":
                add(ep, "unexpected", d.name, d.args, diff=d)
                if asked := asked_instead(ep.request, d.name):
                    add(ep, "unexpected", asked, {k: v for k, v in d.args.items() if k in _TABLE}, diff=d)
            elif d.kind == "missing" and ep.refused:
                add(ep, "refused", d.name, d.args, diff=d)
        for d in ep.evidence.actions:
            if d.kind == "different":
                inst = add(ep, "different", d.name, d.args, diff=d)
                singles += wrong_arguments(inst, ep.evidence.calls, values.get(d.name, {}), field_name, fz,
                                           most.get(d.name))
        for c in ep.evidence.calls:
            if c.observation.startswith("Error") and c.name in missing | {d.name for d in ep.evidence.actions}:
                err = add(ep, "error", c.name, c.args, error=c.observation)
                singles += tool_errors(err)
                want = [a for t, a in ep.expected if t == c.name]
                if want:  # the refused call against the expected one it comes closest to
                    exp = min(want, key=lambda a: len(field_diffs(c.args, a)))
                    err.diff = ActionDiff(kind="different", name=c.name, args=c.args, expected=exp,
                                          fields=field_diffs(c.args, exp), index=c.index)
                    singles += wrong_arguments(err, ep.evidence.calls, values.get(c.name, {}), field_name, fz,
                                               most.get(c.name))
    found_with = sorted({c.name for ep in episodes for c in ep.evidence.calls
                         if ep.user_id and c.observation.strip().strip('"') == ep.user_id})
    out: list[Suggestion] = []
    for groups in by_did.values():
        expected = groups.get("expected", [])
        refused_ids = {(i.trace_id, i.tool) for i in groups.get("refused", [])}
        done = [i for i in expected if (i.trace_id, i.tool) not in refused_ids]
        out += prohibitions(groups.get("unexpected", []), expected, found_with)
        out += permissions(groups.get("refused", []), done)
    return _merge([*out, *singles])


def _bag(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _merge(found: Sequence[Suggestion], same_at: float = 0.7) -> list[Suggestion]:
    """One suggestion per wording: near-copies (word Jaccard >= ``same_at``) pool their traces into the first."""
    merged: list[Suggestion] = []
    for s in sorted(found, key=lambda s: -len(s.trace_ids)):
        bag = _bag(s.hint)
        k = next((i for i, m in enumerate(merged)
                  if len(bag & _bag(m.hint)) / max(1, len(bag | _bag(m.hint))) >= same_at), None)
        if k is None:
            merged.append(s)
        else:
            m = merged[k]
            merged[k] = Suggestion(hint=m.hint, because=m.because,
                                   trace_ids=tuple(dict.fromkeys([*m.trace_ids, *s.trace_ids])))
    return sorted(merged, key=lambda s: -len(s.trace_ids))
