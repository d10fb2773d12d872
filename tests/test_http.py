"""--http: /status as JSON, params and verbs set over HTTP, tokens, and bad requests."""

import http.client
import json
import time

import pytest
import torch

from engine.control.http import HttpControl, StatusPublisher, parse_http, show_status
from engine.errors import StartupError
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from tests.fakes import built_show

pytestmark = pytest.mark.integration  # a real server on a loopback port


@pytest.fixture
def served(scene_file):
    show = built_show(load_scenes([load_scene(scene_file(""))], torch.device("cpu")))
    publisher = StatusPublisher(lambda: show_status(show, 0.0, lambda: {"osc": {"received": 3}}))
    show.frame_hooks.append(publisher)
    control = HttpControl(show, "127.0.0.1", 0, publisher, "secret")
    show.run(frames=2)
    yield show, control, control.server.server_address[1]
    control.close()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    json_body = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers={**json_body, **(headers or {})})
    r = conn.getresponse()
    out = r.status, json.loads(r.read() or b"null")
    conn.close()
    return out


def test_status_and_a_param_set_over_http(served):
    show, control, port = served
    code, status = request(port, "GET", "/status")
    assert code == 200 and status["decks"]["a"] and status["osc"]["received"] == 3 and "frame_ms" in status
    code, reply = request(port, "POST", "/set", json.dumps({"address": "/master/brightness", "value": 0.25}))
    assert code == 202
    code, _ = request(port, "POST", "/verb", json.dumps({"address": "/show/blackout"}))
    assert code == 202
    show.run(frames=1)
    assert show.registry.get("/master/brightness") == 0.25 and show.registry.get("/master/blackout") == 1.0


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/set", b"{not json", 400),
        ("/set", b"[1, 2]", 400),
        ("/set", json.dumps({"address": "/nope", "value": 1}).encode(), 400),
        ("/set", json.dumps({"address": "/master/brightness", "value": "loud"}).encode(), 400),
        ("/set", b'{"address": "/master/brightness", "value": NaN}', 400),
        ("/verb", json.dumps({"address": "/not/a/verb"}).encode(), 400),
        ("/elsewhere", b"{}", 404),
    ],
)
def test_bad_requests_get_a_clear_error_and_change_nothing(served, path, body, code):
    show, control, port = served
    got, reply = request(port, "POST", path, body)
    assert got == code and "error" in reply
    show.run(frames=1)
    assert show.registry.get("/master/brightness") == 1.0 and show.frame_errors == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},  # what a form or a no-preflight fetch from any web page can send
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json", "Origin": "http://evil.example"},
    ],
)
def test_a_post_another_site_could_make_is_refused(served, headers):
    show, control, port = served
    body = json.dumps({"address": "/master/brightness", "value": 0.0})
    code, reply = request(port, "POST", "/set", body, headers)
    assert code == 403 and "application/json" in reply["error"]
    show.run(frames=1)
    assert show.registry.get("/master/brightness") == 1.0


def test_a_10_mb_body_is_refused_unread(served):
    show, control, port = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/set")
    conn.putheader("Content-Length", str(10 * 1024 * 1024))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413
    conn.close()
    assert request(port, "GET", "/status")[0] == 200  # still serving


def test_non_local_clients_need_the_token(served):
    _, control, _ = served
    assert control.allowed("127.0.0.1", None, "")
    assert not control.allowed("10.0.0.5", None, "") and not control.allowed("10.0.0.5", "Bearer wrong", "")
    assert control.allowed("10.0.0.5", "Bearer secret", "") and control.allowed("10.0.0.5", None, "token=secret")


def test_a_bad_address_flag_is_one_error():
    for text in ("8080", "host:", ":80", "h:99999"):
        with pytest.raises(StartupError, match="--http"):
            parse_http(text)
    assert parse_http("0.0.0.0:8080") == ("0.0.0.0", 8080)


def test_status_names_restarts_warnings_audio_and_every_param(served, monkeypatch):
    show, control, port = served
    monkeypatch.setenv("LATENT_STAGE_RESTARTS", "3")  # what `supervise` sets in the show's environment
    status = show_status(show, 0.0, dict, warnings=lambda: ["12:00:00 something went wrong"])
    assert status["restarts"] == 3 and status["warnings"] == ["12:00:00 something went wrong"]
    assert status["audio"] == {"active": False, "underruns": 0}  # no sound layer
    assert status["params"]["/master/brightness"] == 1.0 and len(status["params"]) == len(list(show.registry))
    monkeypatch.setenv("LATENT_STAGE_RESTARTS", "nonsense")
    assert show_status(show, 0.0, dict)["restarts"] == 0


def test_the_page_and_its_controls_are_served(served):
    show, control, port = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    r = conn.getresponse()
    page = r.read().decode()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/html") and "/controls" in page
    conn.close()
    code, doc = request(port, "GET", "/controls")  # the first ask: the frame loop builds it next
    time.sleep(0.6)  # the publisher runs on real time: past its next publish (0.5 s)
    show.run(frames=1)
    code, doc = request(port, "GET", "/controls")
    assert code == 200 and {p["address"] for p in doc["params"]} == {p.address for p in show.registry}
    verbs = {v["address"] for v in doc["verbs"]}
    assert "/setlist/next" in verbs and "/show/blackout" in verbs and not any(v.endswith("/") for v in verbs)
