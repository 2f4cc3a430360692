"""Home Assistant's documented MQTT device-based discovery schema, as a test checker.

Encoded from the MQTT integration docs (home-assistant.io, integrations/mqtt: "Device
discovery payload", "Supported abbreviations", "Adding information about the origin") and the
sensor / binary_sensor platform pages: what a payload on `homeassistant/device/<id>/config`
must hold for HA to set up its entities. Abbreviated keys are expanded first, as HA does.
"""
from __future__ import annotations

import re

# the abbreviations of the keys a sensor/binary_sensor device payload can use (docs' table)
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "cmps": "components", "dev": "device",
    "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "ent_pic": "entity_picture", "exp_aft": "expire_after",
    "frc_upd": "force_update", "ic": "icon", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "p": "platform", "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on",
    "stat_cla": "state_class", "stat_t": "state_topic", "sug_dsp_prc": "suggested_display_precision",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
    "def_ent_id": "default_entity_id",
}
DEVICE_ABBREVIATIONS = {"cu": "configuration_url", "cns": "connections", "ids": "identifiers",
                        "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id",
                        "hw": "hw_version", "sw": "sw_version", "sa": "suggested_area",
                        "sn": "serial_number"}
ORIGIN_ABBREVIATIONS = {"sw": "sw_version", "url": "support_url"}

DEVICE_KEYS = {"configuration_url", "connections", "identifiers", "manufacturer", "model",
               "model_id", "name", "hw_version", "sw_version", "suggested_area",
               "serial_number", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
# options a device payload may hold at its top level and share with every component
SHARED = {"availability", "availability_mode", "availability_template", "availability_topic",
          "payload_available", "payload_not_available", "state_topic", "command_topic", "qos",
          "encoding"}
ENTITY_COMMON = SHARED | {"platform", "name", "unique_id", "default_entity_id", "device_class",
                          "enabled_by_default", "entity_category", "entity_picture",
                          "expire_after", "force_update", "icon", "json_attributes_template",
                          "json_attributes_topic", "value_template"}
PLATFORM_KEYS = {
    "sensor": ENTITY_COMMON | {"state_class", "unit_of_measurement", "suggested_display_precision",
                               "last_reset_value_template", "options"},
    "binary_sensor": ENTITY_COMMON | {"payload_on", "payload_off", "off_delay"},
}
SUPPORTED_PLATFORMS = {"alarm_control_panel", "binary_sensor", "button", "camera", "climate",
                       "cover", "device_automation", "device_tracker", "event", "fan",
                       "humidifier", "image", "lawn_mower", "light", "lock", "notify", "number",
                       "scene", "select", "sensor", "siren", "switch", "tag", "text", "update",
                       "vacuum", "valve", "water_heater"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
DURATION_UNITS = {"d", "h", "min", "s", "ms", "µs"}
BINARY_DEVICE_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold",
                         "connectivity", "door", "garage_door", "gas", "heat", "light", "lock",
                         "moisture", "motion", "moving", "occupancy", "opening", "plug", "power",
                         "presence", "problem", "running", "safety", "smoke", "sound", "tamper",
                         "update", "vibration", "window"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
OBJECT_ID = re.compile(r"^[a-z0-9_]+$")
TOPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _expand(d: dict, table: dict[str, str]) -> dict:
    return {table.get(k, k): v for k, v in d.items()}


def check_device_discovery(payload: dict, device_id: str | None = None) -> dict:
    """Assert `payload` is a valid device discovery payload; return it with keys expanded."""
    cfg = _expand(payload, ABBREVIATIONS)
    for key in ("device", "origin", "components"):
        assert key in cfg, f"device discovery needs {key!r} (HA rejects the payload without it)"
    dev = _expand(cfg["device"], DEVICE_ABBREVIATIONS)
    assert set(dev) <= DEVICE_KEYS, f"unknown device keys {set(dev) - DEVICE_KEYS}"
    assert dev.get("identifiers") or dev.get("connections"), "device needs identifiers"
    if device_id is not None:
        assert device_id in dev["identifiers"] and TOPIC_ID.match(device_id)
    origin = _expand(cfg["origin"], ORIGIN_ABBREVIATIONS)
    assert set(origin) <= ORIGIN_KEYS and isinstance(origin.get("name"), str), \
        "origin needs a name"
    comps = cfg["components"]
    assert isinstance(comps, dict) and comps, "components must be a non-empty mapping"
    top_extra = set(cfg) - {"device", "origin", "components"} - SHARED
    assert not top_extra, f"top-level keys HA does not share with components: {top_extra}"
    seen_uid = set()
    for cid, raw in comps.items():
        assert TOPIC_ID.match(cid), f"component id {cid!r}"
        comp = _expand(raw, ABBREVIATIONS)
        platform = comp.get("platform")
        assert platform in SUPPORTED_PLATFORMS, f"{cid}: platform {platform!r}"
        assert "object_id" not in comp, f"{cid}: object_id is deprecated (HA 2025.10); " \
                                        "use default_entity_id"
        assert comp.get("unique_id"), f"{cid}: entity components need unique_id"
        assert comp["unique_id"] not in seen_uid, f"{cid}: duplicate unique_id"
        seen_uid.add(comp["unique_id"])
        domain, _, obj = str(comp.get("default_entity_id", "")).partition(".")
        assert domain == platform and OBJECT_ID.match(obj), \
            f"{cid}: default_entity_id must be '{platform}.<object_id>'"
        allowed = PLATFORM_KEYS.get(platform)
        if allowed is not None:
            assert set(comp) <= allowed, f"{cid}: keys {set(comp) - allowed} not documented " \
                                         f"for {platform}"
        if "state_class" in comp:
            assert comp["state_class"] in STATE_CLASSES
        if "entity_category" in comp:
            assert comp["entity_category"] in ENTITY_CATEGORIES
        if platform == "sensor" and comp.get("device_class") == "duration":
            assert comp.get("unit_of_measurement") in DURATION_UNITS, \
                f"{cid}: duration needs a time unit"
        if platform == "binary_sensor" and "device_class" in comp:
            assert comp["device_class"] in BINARY_DEVICE_CLASSES
        assert "state_topic" in comp or "state_topic" in cfg, f"{cid}: no state topic"
    return cfg
