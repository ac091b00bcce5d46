"""A small synthetic shop catalog the project writes itself, for the demo and for tests.

A few hundred products over several departments with titles, descriptions, brands and categories, in English
and Chinese (the user's own example: the query "Nike" must rank "Nike鞋" above "Adidas鞋"). Deterministic: the
same seed writes the same catalog.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# department → category → (English product nouns, brands, adjectives)
_DEPARTMENTS = {
    "Shoes": {
        "Running shoes": (["running shoes", "trail running shoes", "road running sneakers"], ["Nike", "Adidas", "Asics", "New Balance"], ["lightweight", "cushioned", "breathable"]),
        "Basketball shoes": (["basketball shoes", "high-top basketball sneakers"], ["Nike", "Adidas", "Under Armour"], ["supportive", "grippy"]),
        "Boots": (["leather work boots", "waterproof hiking boots", "steel toe boots"], ["Timberland", "Caterpillar", "Columbia"], ["waterproof", "insulated"]),
    },
    "Furniture": {
        "Office chairs": (["ergonomic office chair", "mesh desk chair", "executive office chair"], ["Herman Miller", "Steelcase", "IKEA"], ["adjustable", "swivel", "lumbar-support"]),
        "Dining chairs": (["wooden dining chair", "upholstered dining chair", "set of 2 dining chairs"], ["IKEA", "Ashley", "Zinus"], ["oak", "walnut", "modern"]),
        "Garden chairs": (["folding garden chair", "teak patio chair", "adirondack chair"], ["Keter", "Polywood", "Hampton Bay"], ["weather-resistant", "outdoor"]),
        "Sofas": (["3-seat sofa", "sectional couch", "loveseat"], ["IKEA", "Ashley", "La-Z-Boy"], ["velvet", "linen", "leather"]),
    },
    "Kitchen": {
        "Refrigerators": (["french door refrigerator", "top freezer refrigerator", "mini fridge"], ["Samsung", "LG", "Whirlpool"], ["stainless steel", "energy star"]),
        "Coffee makers": (["drip coffee maker", "espresso machine", "single serve coffee maker"], ["Breville", "Keurig", "De'Longhi"], ["programmable", "12-cup"]),
        "Faucets": (["pull-down kitchen faucet", "single handle kitchen faucet"], ["Moen", "Delta", "Kohler"], ["brushed nickel", "matte black"]),
    },
    "Electronics": {
        "Televisions": (["4K smart TV", "OLED television", "LED TV"], ["Samsung", "LG", "Sony", "TCL"], ["55-inch", "65-inch", "HDR"]),
        "Laptops": (["ultrabook laptop", "gaming laptop", "2-in-1 laptop"], ["Dell", "Lenovo", "Apple", "ASUS"], ["14-inch", "16GB RAM", "thin"]),
        "Headphones": (["noise cancelling headphones", "wireless earbuds", "over-ear headphones"], ["Sony", "Bose", "Apple"], ["bluetooth", "wireless"]),
    },
    "Tools": {
        "Drills": (["cordless drill driver", "hammer drill", "impact driver"], ["DeWalt", "Makita", "Milwaukee", "Ryobi"], ["20V", "brushless", "compact"]),
        "Saws": (["circular saw", "miter saw", "reciprocating saw"], ["DeWalt", "Makita", "Bosch"], ["7-1/4 in.", "corded", "cordless"]),
        "Lumber": (["2 in. x 4 in. x 8 ft. stud", "pressure-treated deck board", "plywood sheet"], ["Home Depot", "Weyerhaeuser"], ["kiln-dried", "premium"]),
    },
}

# Chinese products: (title, brand, category, description)
_CHINESE = [
    ("Nike鞋", "Nike", "Running shoes", "耐克运动鞋，轻便透气，适合跑步"),
    ("Adidas鞋", "Adidas", "Running shoes", "阿迪达斯运动鞋，舒适缓震"),
    ("Nike篮球鞋 高帮", "Nike", "Basketball shoes", "耐克高帮篮球鞋，防滑耐磨"),
    ("Adidas跑步鞋 男款", "Adidas", "Running shoes", "阿迪达斯男款跑步鞋"),
    ("人体工学办公椅", "Steelcase", "Office chairs", "可调节腰托，久坐不累"),
    ("实木餐椅 两把装", "IKEA", "Dining chairs", "橡木餐椅，北欧风格"),
    ("户外折叠椅", "Keter", "Garden chairs", "防水户外折叠椅，适合花园和露营"),
    ("三人布艺沙发", "Ashley", "Sofas", "亚麻布艺沙发，客厅家具"),
    ("双开门冰箱", "Samsung", "Refrigerators", "不锈钢双开门冰箱，节能"),
    ("全自动咖啡机", "De'Longhi", "Coffee makers", "意式全自动咖啡机"),
    ("65英寸4K智能电视", "TCL", "Televisions", "HDR 智能电视"),
    ("轻薄笔记本电脑", "Lenovo", "Laptops", "14英寸轻薄本，16GB内存"),
    ("降噪蓝牙耳机", "Sony", "Headphones", "主动降噪头戴式耳机"),
    ("无刷电钻 20V", "DeWalt", "Drills", "锂电无刷电钻，带两块电池"),
    ("电圆锯", "Makita", "Saws", "7寸电圆锯，木工切割"),
]

SAMPLE_REQUESTS = [
    {"qid": "q1", "query": "Nike"},
    {"qid": "q2", "query": "office chair", "clicks": []},  # clicks filled in by the demo from the catalog
    {"qid": "q3", "query": "跑步鞋"},
    {"qid": "q4", "query": None, "clicks": []},
]


def make_sample_catalog(seed: int = 7) -> pa.Table:
    """``item_id, title, description, brand, categories`` (categories: list of strings), a few hundred rows."""
    rng = random.Random(seed)
    rows = []
    for dept, cats in _DEPARTMENTS.items():
        for cat, (nouns, brands, adjectives) in cats.items():
            for noun in nouns:
                for brand in brands:
                    for adjective in rng.sample(adjectives, min(2, len(adjectives))):
                        title = f"{brand} {adjective} {noun}"
                        description = (f"{adjective.capitalize()} {noun} by {brand}. "
                                       f"Part of our {cat.lower()} range in {dept.lower()}.")
                        rows.append((title, description, brand, [dept, cat]))
    for title, brand, cat, description in _CHINESE:
        dept = next(d for d, cats in _DEPARTMENTS.items() if cat in cats)
        rows.append((title, description, brand, [dept, cat]))
    rng.shuffle(rows)
    return pa.table({
        "item_id": [f"SKU{i:05d}" for i in range(1, len(rows) + 1)],
        "title": [r[0] for r in rows],
        "description": [r[1] for r in rows],
        "brand": [r[2] for r in rows],
        "categories": [r[3] for r in rows],
    })


def write_sample_catalog(path: str | Path, seed: int = 7) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(make_sample_catalog(seed), path)
    return path
