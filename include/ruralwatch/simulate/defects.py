"""Defect presets: how often each planted defect and each accepted variant spelling occurs.

Row-level classes damage one cell (or one row, or one household); file-level classes break or bend a
whole delivery. `none` plants nothing but still spells values every accepted way; `default` stays
realistic (rows made unusable by a bad resident ID or a repeated key are capped at 1% of a delivery, well
under the 2% that quarantines a batch); `heavy` is for fault tests and will quarantine some batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# Defects that make a row unusable (a resident ID column invalid, or a key that repeats).
ID_DEFECTS = ("id_bad_check", "id_scientific", "id_numeric_cell")
ROW_DEFECTS = (
    *ID_DEFECTS, "id_partial", "id_birth_mismatch", "gender_mismatch", "area_unknown", "area_wrong_level",
    "date_impossible", "date_future", "month_impossible", "amount_negative", "claim_total_mismatch",
    "discharge_before_admission", "duplicate_key", "two_heads", "household_size_mismatch",
    "household_income_inconsistent", "toilets_exceed_households", "tap_exceeds_households",
    "outage_days_out_of_range", "required_value_missing", "cd_house_no_rebuild_needed",
    "cross_feed_total_mismatch", "unknown_lead",
)
# Whole-delivery events: the delivery is rejected, is a duplicate, or (the last) is quarantined.
STRUCTURAL = (
    "missing_required_column", "header_only_snapshot", "unreadable_file", "undecodable_file",
    "unparseable_name", "folder_name_mismatch", "duplicate_bytes_v2", "resent_last_month",
    "quarantined_batch",
)
# Whole-file events whose first delivery fails and is followed by a good _v2 from the department.
FOLLOWED_BY_CORRECTION = ("missing_required_column", "header_only_snapshot", "unreadable_file",
                          "undecodable_file", "quarantined_batch")
# quarantined_batch: a delivery whose rows are spoiled (bad resident IDs) beyond the 2% gate.
QUARANTINE_ID_RATE = 0.04
FILE_CLASSES = ("extra_unknown_column", *STRUCTURAL)
# Accepted spellings planted cell by cell (file-wide spellings are listed per delivery instead).
VARIANTS = (
    "id_fullwidth", "id_spaces", "id_lower_x", "id_15_digit", "date_form", "month_form", "amount_form",
    "yesno_form", "null_form",
)


@dataclass(frozen=True)
class Preset:
    name: str
    rates: dict[str, float] = field(default_factory=dict)      # row defects, per eligible cell/row
    variants: dict[str, float] = field(default_factory=dict)   # accepted spellings, per eligible cell
    unusable_cap: float | None = 0.01   # share of a delivery's rows the ID/duplicate defects may spoil
    drift_rate: float = 0.0             # deliveries with an extra unknown column
    late_rate: float = 0.0              # feed-months delivered after the due day
    redelivery_rate: float = 0.0        # feed-months with a corrected _v2
    structural: tuple[float, ...] = ()  # chance of a 1st, 2nd, ... structural break per month
    every_structural: bool = False      # heavy: every class each month
    api_missing_rate: float = 0.0       # months the API lacks (the CSV fallback is then the only channel)

    def rate(self, cls: str) -> float:
        return self.rates.get(cls, 0.0)

    def scaled(self, factor: float) -> Preset:
        """A corrected re-delivery: the department fixed most, not all, of what was wrong."""
        return replace(self, rates={k: v * factor for k, v in self.rates.items()})


# Cell-level spellings stay rare so that the manifest, which lists each one, stays small; the file-wide
# spellings (one date form, one null form, ... per delivery) cover the rest of every column.
_VARIANTS = {
    "id_fullwidth": 0.0008, "id_spaces": 0.0008, "id_lower_x": 0.01, "id_15_digit": 0.0008,
    "date_form": 0.001, "month_form": 0.002, "amount_form": 0.001, "yesno_form": 0.001, "null_form": 0.001,
}
_DEFAULT_RATES = {
    "id_bad_check": 0.0015, "id_scientific": 0.0008, "id_numeric_cell": 0.0008, "id_partial": 1.0,
    "id_birth_mismatch": 0.001, "gender_mismatch": 0.0005, "area_unknown": 0.001, "area_wrong_level": 0.001,
    "date_impossible": 0.001, "date_future": 0.001, "month_impossible": 0.001, "amount_negative": 0.001,
    "claim_total_mismatch": 0.002, "discharge_before_admission": 0.001, "duplicate_key": 0.0005,
    "two_heads": 0.002, "household_size_mismatch": 0.002, "household_income_inconsistent": 0.002,
    "toilets_exceed_households": 0.003, "tap_exceeds_households": 0.003, "outage_days_out_of_range": 0.003,
    "required_value_missing": 0.0005, "cd_house_no_rebuild_needed": 0.02, "cross_feed_total_mismatch": 0.005,
    "unknown_lead": 0.0,
}

PRESETS: dict[str, Preset] = {
    "none": Preset("none", rates={}, variants=_VARIANTS, unusable_cap=0.0),
    "default": Preset("default", rates=_DEFAULT_RATES, variants=_VARIANTS, unusable_cap=0.01, drift_rate=0.03,
                      late_rate=0.03, redelivery_rate=0.03, structural=(0.35, 0.1)),
    # heavy: value defects six times as often; the row-spoiling ones only four times, so that most
    # batches stay under the 2% gate and the one deliberately quarantined batch a month stands out.
    "heavy": Preset("heavy", rates={k: min(v * (4 if k in (*ID_DEFECTS, "duplicate_key") else 6), 1.0)
                                    for k, v in _DEFAULT_RATES.items()}, variants=_VARIANTS,
                    unusable_cap=None, drift_rate=0.15, late_rate=0.15, redelivery_rate=0.1,
                    every_structural=True, api_missing_rate=0.2),
}
# Whole-file breaks that default may plant: each one is followed by a good delivery, so no month
# goes missing because of it.
DEFAULT_STRUCTURAL = ("duplicate_bytes_v2", "folder_name_mismatch", "header_only_snapshot",
                      "missing_required_column", "resent_last_month", "unparseable_name")


def preset(name: str, overrides: dict[str, float] | None = None) -> Preset:
    """A preset by name, with row-defect rates overridden (--rate CLASS=R)."""
    if name not in PRESETS:
        raise ValueError(f"unknown defect preset {name!r}: use none, default or heavy")
    base = PRESETS[name]
    if not overrides:
        return base
    unknown = set(overrides) - set(ROW_DEFECTS) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown defect or variant class: {', '.join(sorted(unknown))}")
    rates = dict(base.rates)
    variants = dict(base.variants)
    for cls, rate in overrides.items():
        (variants if cls in VARIANTS else rates)[cls] = rate
    return replace(base, rates=rates, variants=variants)
