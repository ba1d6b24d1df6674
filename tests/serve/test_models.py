"""``GET /v1/models`` on the real server, through the official OpenAI client: list the models, then
chat with the listed id, the way Open WebUI-style clients start."""

from __future__ import annotations

from datetime import datetime

import openai
import pytest

from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow

CANTEEN = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    kb = tmp_path_factory.mktemp("models") / "kb"
    keys = {
        "admin": create_key(kb, "ops", "query,ingest,admin"),
        "query": create_key(kb, "reader", "query"),
        "ingest": create_key(kb, "loader", "ingest"),
    }
    srv = Server(kb).start()
    yield srv, keys
    srv.stop()


def test_openai_client_lists_the_model_then_chats_with_it(server) -> None:
    srv, keys = server
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=keys["query"])
    before = client.models.list()
    assert [(m.id, m.object, m.owned_by, m.created) for m in before.data] == [("groundwork", "model", "groundwork", 0)]

    admin = srv.client(keys["admin"])
    r = admin.post("/v1/documents", files=[("files", ("canteen.md", CANTEEN.encode(), "text/markdown"))])
    assert wait_job(admin, r.json()["job_id"])["status"] == "done"
    first_version = admin.get("/v1/versions").json()[0]["created_at"]

    models = client.models.list()
    assert models.object == "list" and len(models.data) == 1
    model = models.data[0]
    assert model.created == int(datetime.fromisoformat(first_version).timestamp()) > 0
    reply = client.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": "When is lunch served?"}]
    )
    assert reply.model == model.id and "noon" in reply.choices[0].message.content


def test_models_need_a_key_with_the_query_scope(server) -> None:
    srv, keys = server
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.url + "/v1", api_key="gw_not_a_key").models.list()
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=srv.url + "/v1", api_key=keys["ingest"]).models.list()
