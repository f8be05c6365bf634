"""The synthetic city's area tree: 示范市 (province code 99, city 9901) → counties → towns → villages.

The tree is fixed (its own seed, independent of --seed and --persons) so that every run, the project's
committed area seed and the warehouse's tests all talk about the same villages.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CITY_CODE = 990100000000
CITY_NAME = "示范市"
_GEOGRAPHY_SEED = 990100
_COUNTY_NAMES = ("青山县", "柳河县", "石门县", "安平县", "云溪县", "白水县")
_FIRST = "东西南北上下中前后大小新老高长青红白黄金石松柏桃李杏柳竹梅兰荷花龙凤马牛羊鹿鹤燕云雾霞山岭坡岗峰沟河溪湖泉塘湾洲坪坝桥庄寨堡营屯"
_SECOND = "家庄村坪沟湾岭坡河桥铺店集寨堡营屯台林园田山口头水塘泉坝场洼塬峪川庙阳安宁平和兴旺丰盛福寿康乐"


@dataclass(frozen=True)
class Geography:
    county_codes: np.ndarray      # int64, 12-digit codes
    county_names: tuple[str, ...]
    town_codes: np.ndarray
    town_names: tuple[str, ...]
    town_county: np.ndarray       # index into counties
    village_codes: np.ndarray
    village_names: tuple[str, ...]
    village_town: np.ndarray      # index into towns
    village_households: np.ndarray  # 总户数: every household of the village, on the roster or not
    village_resettlement: np.ndarray  # bool: a relocation (易地搬迁) settlement

    @property
    def village_county(self) -> np.ndarray:
        return self.town_county[self.village_town]

    def name_of(self) -> dict[int, str]:
        names = {CITY_CODE: CITY_NAME}
        names.update(zip(self.county_codes.tolist(), self.county_names, strict=True))
        names.update(zip(self.town_codes.tolist(), self.town_names, strict=True))
        names.update(zip(self.village_codes.tolist(), self.village_names, strict=True))
        return names

    def levels(self) -> dict[int, str]:
        """Every code of the reference with its level (市/县/镇/村)."""
        out = {CITY_CODE: "市"}
        out.update(dict.fromkeys(self.county_codes.tolist(), "县"))
        out.update(dict.fromkeys(self.town_codes.tolist(), "镇"))
        out.update(dict.fromkeys(self.village_codes.tolist(), "村"))
        return out


def _place_names(rng: np.random.Generator, count: int, suffix: str) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = _FIRST[rng.integers(len(_FIRST))] + _SECOND[rng.integers(len(_SECOND))] + suffix
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@functools.cache
def geography() -> Geography:
    rng = np.random.default_rng(_GEOGRAPHY_SEED)
    county_codes, town_codes, town_names, town_county = [], [], [], []
    village_codes, village_names, village_town = [], [], []
    for c, _ in enumerate(_COUNTY_NAMES):
        county = CITY_CODE + (c + 1) * 10**6
        county_codes.append(county)
        n_towns = int(rng.integers(8, 13))
        n_xiang = int(rng.integers(0, 3))
        for t, town_name in enumerate(_place_names(rng, n_towns, "镇")):
            # 1xx are towns (镇) and 2xx townships (乡), as in the national coding rules.
            is_xiang = t >= n_towns - n_xiang
            ttt = 201 + t - (n_towns - n_xiang) if is_xiang else 101 + t
            town = county + ttt * 1000
            town_codes.append(town)
            town_names.append(town_name[:-1] + "乡" if is_xiang else town_name)
            town_county.append(c)
            n_villages = int(rng.integers(10, 21))
            for v, village_name in enumerate(_place_names(rng, n_villages, "村")):
                village_codes.append(town + 201 + v)
                village_names.append(village_name)
                village_town.append(len(town_codes) - 1)
    n = len(village_codes)
    return Geography(
        county_codes=np.array(county_codes, dtype=np.int64),
        county_names=_COUNTY_NAMES,
        town_codes=np.array(town_codes, dtype=np.int64),
        town_names=tuple(town_names),
        town_county=np.array(town_county, dtype=np.int32),
        village_codes=np.array(village_codes, dtype=np.int64),
        village_names=tuple(village_names),
        village_town=np.array(village_town, dtype=np.int32),
        village_households=rng.integers(150, 900, size=n).astype(np.int32),
        village_resettlement=rng.random(n) < 0.1,
    )


def area_rows() -> list[tuple[str, str, str, str]]:
    """The reference rows (行政区划代码, 名称, 级别, 上级代码), parents before children."""
    geo = geography()
    rows = [(str(CITY_CODE), CITY_NAME, "市", "")]
    for c, code in enumerate(geo.county_codes.tolist()):
        rows.append((str(code), geo.county_names[c], "县", str(CITY_CODE)))
        for t in np.flatnonzero(geo.town_county == c).tolist():
            town = int(geo.town_codes[t])
            rows.append((str(town), geo.town_names[t], "镇", str(code)))
            for v in np.flatnonzero(geo.village_town == t).tolist():
                rows.append((str(int(geo.village_codes[v])), geo.village_names[v], "村", str(town)))
    return rows


def write_area_reference(path: str | Path) -> Path:
    """Write the area reference CSV (UTF-8, header 行政区划代码,名称,级别,上级代码); the city has no parent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("行政区划代码", "名称", "级别", "上级代码"))
        writer.writerows(area_rows())
    return path
