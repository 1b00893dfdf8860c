"""The incident taxonomy: 2-digit major classes and minor codes with Chinese and English names,
from a CSV a center can replace; the API lists it and filters by a class or an event code."""

from __future__ import annotations

import dataclasses
import json

import pytest

from geogrid.api import create_app
from geogrid.errors import ConfigError, InvalidInput
from geogrid.incidents import taxonomy
from tests.conftest import bearer

DOMAIN_CATEGORIES = {"illegal_production", "illegal_business", "illegal_construction", "work_safety",
                     "petition_stability", "grassroots_organisation", "public_opinion", "public_matters",
                     "property_management", "uncivil_dog_keeping", "flyposting", "illegal_parking", "street_vending",
                     "garbage", "rural_road_damage", "water", "power", "gas", "heating", "jobs", "medical_care",
                     "public_facility_safety"}  # fmt: skip
HEADER = "major,major_zh,major_en,minor,code,zh,en,deadline_hours,level_hours\n"


def test_the_default_groups_every_domain_category_under_the_standard_classes():
    found = taxonomy.categories()
    assert set(found) == DOMAIN_CATEGORIES
    assert len({c.class_code for c in found.values()}) == len(found)  # every event code is unique
    assert all(len(c.class_code) == 4 and c.class_code.isdigit() for c in found.values())
    standard = {k.code: k.zh for k in taxonomy.classes()}
    assert [standard[k] for k in ("01", "02", "03", "04", "05")] == ["市容环境", "宣传广告", "施工管理", "突发事件",
                                                                     "街面秩序"]  # fmt: skip
    assert found["illegal_parking"].class_code == "0501" and found["illegal_parking"].major_en == "Street order"
    assert taxonomy.matching("05") == ["illegal_parking", "street_vending", "illegal_business", "illegal_production"]
    assert taxonomy.matching("0501") == ["illegal_parking"] and taxonomy.matching(None) is None
    with pytest.raises(InvalidInput, match="unknown category '09'.*01 市容环境"):
        taxonomy.matching("09")


def test_a_center_replaces_the_list_with_its_own_csv(tmp_path, settings, conn, make_user):
    mine = tmp_path / "事件分类.csv"
    mine.write_text(
        HEADER + "01,市容环境,City appearance,03,snow,积雪,Snow on the street,6,township=12;city=24\n"
        "11,社区服务,Community services,01,elderly_care,养老服务,Elderly care,72,\n",
        encoding="utf-8-sig",
    )
    found = taxonomy.categories(mine)
    assert list(found) == ["snow", "elderly_care"]
    assert found["snow"].hours_at("city") == 24 and found["snow"].hours_at(None) == 6
    client = create_app(dataclasses.replace(settings, categories_file=mine), bind=conn).test_client()
    _, token = make_user("worker")
    listed = client.get("/api/categories", headers=bearer(token)).json
    assert [k["code"] for k in listed] == ["01", "11"]
    assert listed[1]["categories"] == [{"code": "elderly_care", "event_code": "1101", "minor": "01", "zh": "养老服务",
                                        "en": "Elderly care", "deadline_hours": 72, "level_hours": {}}]  # fmt: skip


GARBAGE = "01,市容环境,City,01,garbage,垃圾,Garbage,48,\n"


@pytest.mark.parametrize("rows,words", [
    (GARBAGE + "01,市容环境,City,02,garbage,垃圾,Garbage,48,\n", "line 3: category garbage is listed twice"),
    (GARBAGE + "01,市容环境,City,01,dogs,养犬,Dogs,48,\n", "code 0101 is both garbage and dogs"),
    (GARBAGE + "01,市容,City,02,dogs,养犬,Dogs,48,\n", "class 01 is named differently"),
    ("1,市容环境,City,01,garbage,垃圾,Garbage,48,\n", "2 digits"),
    ("01,市容环境,City,01,Garbage Bins,垃圾,Garbage,48,\n", "lower-case letters"),
    ("01,市容环境,City,01,garbage,垃圾,Garbage,0,\n", "positive hours"),
    ("01,市容环境,City,01,garbage,垃圾,Garbage,48,city=soon\n", "whole hours"),
    ("01,市容环境,City,01,garbage,,Garbage,48,\n", "line 2: zh is empty"),
])  # fmt: skip
def test_a_bad_list_is_refused_at_start_naming_the_line(tmp_path, rows, words):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(ConfigError, match=words):
        taxonomy.categories(bad)


def test_a_missing_column_is_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,zh,en\ngarbage,垃圾,Garbage\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing column.*major, major_zh, major_en, minor, deadline_hours"):
        taxonomy.categories(bad)


def test_the_older_json_list_still_reads(tmp_path):
    old = tmp_path / "categories.json"
    old.write_text(json.dumps([{"code": "garbage", "zh": "垃圾", "en": "Garbage", "deadline_hours": 48,
                                "level_hours": {"township": 72}}]), encoding="utf-8")  # fmt: skip
    found = taxonomy.categories(old)["garbage"]
    assert (found.major, found.major_zh, found.hours_at("township")) == ("99", "其他", 72)
