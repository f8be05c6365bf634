"""Plausible Chinese names: a weighted surname and one or two given characters."""
from __future__ import annotations

import numpy as np

# Roughly the most common surnames, most frequent first (weights fall off like the real distribution).
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_WEIGHTS = 1.0 / (np.arange(len(SURNAMES)) + 8.0)
SURNAME_P = _SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum()
MALE_CHARS = "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘"
FEMALE_CHARS = "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"


_S = np.array(SURNAMES, dtype=object)
_M = np.array(list(MALE_CHARS) + [""], dtype=object)
_F = np.array(list(FEMALE_CHARS) + [""], dtype=object)


def draw_surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(len(SURNAMES), size=n, p=SURNAME_P).astype(np.int16)


def draw_given(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one or two given characters; -1 is "no second character" (~30% of people)."""
    size = min(len(MALE_CHARS), len(FEMALE_CHARS))
    first = rng.integers(0, size, n).astype(np.int16)
    second = rng.integers(0, size, n).astype(np.int16)
    second[rng.random(n) < 0.3] = -1
    return first, second


def render(surname: np.ndarray, first: np.ndarray, second: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Full names (object array of str); the given characters come from the pool of the person's sex."""
    given1 = np.where(male, _M[first], _F[first])
    given2 = np.where(male, _M[second], _F[second])
    return _S[surname] + given1 + given2
