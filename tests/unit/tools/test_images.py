"""The image client against the real loopback image stub: the OpenAI request bodies,
the decoded image, the description, retries on 429 only, every failure as
`ImageEndpointError`, and the configuration from the environment."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from aisle.errors import AisleError, ConfigurationError
from aisle.llm.vllm import free_port
from aisle.settings import Settings, get_settings
from aisle.testing import (
    ONE_PIXEL_PNG,
    Fault,
    ImageStubServer,
    RawReply,
    image_stub_server,
)
from aisle.tools.images import (
    GeneratedImage,
    ImageEndpoint,
    ImageEndpointError,
    describe_image,
    generate_image,
    image_endpoint_from_env,
)

DESCRIPTION = "A long camel overcoat over a tweed suit."
DATA_URI = "data:image/png;base64," + base64.b64encode(ONE_PIXEL_PNG).decode()
ENV_VARS = ("AISLE_IMAGE_BASE_URL", "AISLE_IMAGE_MODEL", "AISLE_IMAGE_API_KEY",
            "AISLE_VLM_BASE_URL", "AISLE_VLM_MODEL", "AISLE_VLM_API_KEY")


@pytest.fixture
def stub() -> Iterator[ImageStubServer]:
    with image_stub_server(description=DESCRIPTION) as server:
        yield server


def endpoint_for(stub: ImageStubServer, **overrides: object) -> ImageEndpoint:
    fields: dict[str, object] = {"base_url": stub.base_url, "model": "stub-image",
                                 "api_key": "sk-image", "vlm_model": "stub-vlm",
                                 "timeout_s": 5.0, "retry_initial_wait_s": 0.0}
    return ImageEndpoint.model_validate({**fields, **overrides})


async def test_generate_image_sends_the_openai_body_and_decodes_the_png(
        stub: ImageStubServer) -> None:
    image = await generate_image(endpoint_for(stub, size="256x256"), "a deerstalker hat")
    assert image == GeneratedImage(png=ONE_PIXEL_PNG, url=None, revised_prompt=None)
    (request,) = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/images/generations")
    assert request.body == {"model": "stub-image", "prompt": "a deerstalker hat", "n": 1,
                            "size": "256x256", "response_format": "b64_json"}
    assert request.headers["authorization"] == "Bearer sk-image"


async def test_no_key_sends_no_authorization(stub: ImageStubServer) -> None:
    await generate_image(endpoint_for(stub, api_key=None), "a scarf")
    assert "authorization" not in stub.requests[0].headers


async def test_describe_image_sends_the_vision_message(stub: ImageStubServer) -> None:
    endpoint = endpoint_for(stub)
    image = await generate_image(endpoint, "a deerstalker hat")
    text = await describe_image(endpoint, image, "Describe the outfit.")
    assert text == DESCRIPTION
    request = stub.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-image"
    assert request.body == {
        "model": "stub-vlm",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe the outfit."},
            {"type": "image_url", "image_url": {"url": DATA_URI}},
        ]}],
        "temperature": 0,
    }


async def test_an_image_by_url_is_passed_on_by_url() -> None:
    with image_stub_server(answer_with="url", revised_prompt="a tweed deerstalker") as stub:
        endpoint = endpoint_for(stub)
        image = await generate_image(endpoint, "a deerstalker hat")
        assert image.png is None
        assert image.revised_prompt == "a tweed deerstalker"
        assert image.url is not None
        assert image.url.startswith(stub.base_url + "/files/")
        await describe_image(endpoint, image, "What is it?")
        content = stub.requests[-1].body["messages"][0]["content"]
    assert content[1]["image_url"]["url"] == image.url


async def test_a_separate_vlm_server_gets_its_own_key_only(stub: ImageStubServer) -> None:
    with image_stub_server(description="from the VLM") as vlm:
        with_key = endpoint_for(stub, vlm_base_url=vlm.base_url, vlm_api_key="sk-vlm")
        image = GeneratedImage(png=ONE_PIXEL_PNG)
        assert await describe_image(with_key, image, "What is it?") == "from the VLM"
        without = endpoint_for(stub, vlm_base_url=vlm.base_url)
        await describe_image(without, image, "What is it?")
        first, second = vlm.requests
    assert first.headers["authorization"] == "Bearer sk-vlm"
    assert "authorization" not in second.headers  # the image key stays with its server
    assert stub.requests == []


async def test_a_server_that_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    endpoint = ImageEndpoint(base_url=url, model="m", vlm_model="v")
    with pytest.raises(ImageEndpointError, match=r"cannot reach .*is the server running") as e:
        await generate_image(endpoint, "a hat")
    assert e.value.url == f"{url}/images/generations"
    assert e.value.status is None
    assert isinstance(e.value, AisleError)
    with pytest.raises(ImageEndpointError, match="check AISLE_IMAGE_BASE_URL"):
        await describe_image(endpoint, GeneratedImage(png=ONE_PIXEL_PNG), "What is it?")


async def test_a_500_fails_at_once_with_its_status(stub: ImageStubServer) -> None:
    stub.inject(Fault(status=500))
    with pytest.raises(ImageEndpointError) as e:
        await generate_image(endpoint_for(stub), "a hat")
    assert e.value.status == 500
    assert str(e.value) == (f"{stub.base_url}/images/generations answered HTTP 500: "
                            "injected HTTP 500")
    assert len(stub.requests) == 1


@pytest.mark.parametrize("retry_after", [0.0, None])
async def test_a_429_is_retried(stub: ImageStubServer, retry_after: float | None) -> None:
    stub.inject(Fault(status=429, retry_after=retry_after))
    image = await generate_image(endpoint_for(stub), "a hat")
    assert image.png == ONE_PIXEL_PNG
    assert [r.body["prompt"] for r in stub.requests] == ["a hat", "a hat"]


async def test_a_garbled_retry_after_means_back_off(stub: ImageStubServer) -> None:
    stub.inject(RawReply(status=429, body=b"{}", headers={"Retry-After": "soon"}))
    assert (await generate_image(endpoint_for(stub), "a hat")).png == ONE_PIXEL_PNG
    assert len(stub.requests) == 2


async def test_a_429_on_describe_is_retried(stub: ImageStubServer) -> None:
    stub.inject(Fault(status=429, retry_after=0), Fault(status=429, retry_after=0))
    text = await describe_image(endpoint_for(stub), GeneratedImage(png=b"x"), "What?")
    assert text == DESCRIPTION
    assert len(stub.requests) == 3


async def test_429s_beyond_the_retries_fail(stub: ImageStubServer) -> None:
    stub.inject(*[Fault(status=429, retry_after=0)] * 3)
    with pytest.raises(ImageEndpointError, match=r"still answered HTTP 429 .* after 3 attempt") \
            as e:
        await generate_image(endpoint_for(stub, max_retries=2), "a hat")
    assert e.value.status == 429
    assert len(stub.requests) == 3


async def test_a_long_retry_after_fails_at_once(stub: ImageStubServer) -> None:
    stub.inject(Fault(status=429, retry_after=3600))
    with pytest.raises(ImageEndpointError, match=r"retry after 3600s, longer than "
                                                 r"max_retry_after_s=30"):
        await generate_image(endpoint_for(stub), "a hat")
    assert len(stub.requests) == 1


async def test_a_timeout(stub: ImageStubServer) -> None:
    stub.inject(Fault(delay=1.0))
    with pytest.raises(ImageEndpointError, match=r"did not answer within 0.2s; raise"):
        await generate_image(endpoint_for(stub, timeout_s=0.2), "a hat")


async def test_a_dropped_connection(stub: ImageStubServer) -> None:
    stub.inject(Fault(drop=True))
    with pytest.raises(ImageEndpointError, match="cannot reach"):
        await generate_image(endpoint_for(stub), "a hat")


@pytest.mark.parametrize(("reply", "expected"), [
    (RawReply(body=b"<html>oops</html>", content_type="text/html"),
     r"answered HTTP 200 with a body that is not JSON: '<html>oops</html>'"),
    (RawReply(body=b'{"data": []}'), r"not in the OpenAI shape: no data\[0\] object"),
    (RawReply(body=b'{"data": [{"revised_prompt": "x"}]}'), r"neither b64_json nor url"),
    (RawReply(body=b'{"data": [{"b64_json": "***"}]}'), r"b64_json is not base64"),
    (RawReply(body=b'{"data": [{"b64_json": 7}]}'), r"b64_json is not a string"),
    (RawReply(status=404, body=b'{"detail": "Not Found"}'), r"answered HTTP 404: Not Found"),
    (RawReply(status=503, body=b""), r"answered HTTP 503: \(empty body\)"),
])
async def test_bad_image_answers(stub: ImageStubServer, reply: RawReply, expected: str) -> None:
    stub.inject(reply)
    with pytest.raises(ImageEndpointError, match=expected) as e:
        await generate_image(endpoint_for(stub), "a hat")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"{stub.base_url}/images/generations ")


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"choices": []}', r"no choices\[0\].message.content"),
    (b'{"choices": [{"message": {"content": "  "}}]}', r"content is empty"),
])
async def test_bad_descriptions(stub: ImageStubServer, body: bytes, expected: str) -> None:
    stub.inject(RawReply(body=body))
    with pytest.raises(ImageEndpointError, match=expected):
        await describe_image(endpoint_for(stub), GeneratedImage(png=b"x"), "What?")


async def test_content_parts_are_joined(stub: ImageStubServer) -> None:
    stub.inject(RawReply(body=b'{"choices": [{"message": {"content": '
                              b'[{"type": "text", "text": "A cape"}, {"type": "text", '
                              b'"text": " and a hat."}]}}]}'))
    text = await describe_image(endpoint_for(stub), GeneratedImage(png=b"x"), "What?")
    assert text == "A cape and a hat."


async def test_describe_needs_a_vlm_and_a_question(stub: ImageStubServer) -> None:
    image = GeneratedImage(png=ONE_PIXEL_PNG)
    with pytest.raises(ConfigurationError, match=r"set vlm_model .*AISLE_VLM_MODEL"):
        await describe_image(endpoint_for(stub, vlm_model=None), image, "What?")
    with pytest.raises(ConfigurationError, match="question"):
        await describe_image(endpoint_for(stub), image, " ")
    with pytest.raises(ConfigurationError, match="prompt must not be empty"):
        await generate_image(endpoint_for(stub), "")
    assert stub.requests == []


def test_endpoint_validation() -> None:
    endpoint = ImageEndpoint(base_url=" https://api.example.com/v1/ ", model="m")
    assert (endpoint.base_url, endpoint.timeout_s, endpoint.size) == (
        "https://api.example.com/v1", 120.0, "512x512")
    assert endpoint.vlm_model is None
    assert endpoint.vlm_url == endpoint.base_url
    assert "sk-secret" not in repr(ImageEndpoint(base_url="http://h", model="m",
                                                 api_key="sk-secret"))
    for bad in ({"base_url": "127.0.0.1:9000/v1"}, {"model": ""}, {"size": "big"},
                {"size": "0x512"}, {"timeout_s": 0}, {"vlm_base_url": "http://v/v1"},
                {"colour": "red"}):
        with pytest.raises(ValidationError):
            ImageEndpoint.model_validate({"base_url": "http://h/v1", "model": "m", **bad})


def test_generated_image() -> None:
    image = GeneratedImage(png=ONE_PIXEL_PNG, revised_prompt="p")
    assert image.data_uri() == DATA_URI
    assert GeneratedImage.model_validate_json(image.model_dump_json()) == image
    assert GeneratedImage(png=b"\xff\xd8\xff\xe0rest").media_type == "image/jpeg"
    assert GeneratedImage(url="http://h/x.png").data_uri() == "http://h/x.png"
    with pytest.raises(ValidationError, match=r"png.*or a url"):
        GeneratedImage()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_endpoint_from_env(clean_env: pytest.MonkeyPatch) -> None:
    assert image_endpoint_from_env(Settings()) is None
    clean_env.setenv("AISLE_IMAGE_BASE_URL", "http://127.0.0.1:9000/v1")
    clean_env.setenv("AISLE_IMAGE_MODEL", "sdxl-turbo")
    clean_env.setenv("AISLE_IMAGE_API_KEY", "sk-image")
    clean_env.setenv("AISLE_VLM_BASE_URL", "http://127.0.0.1:9001/v1")
    clean_env.setenv("AISLE_VLM_MODEL", "qwen2-vl")
    clean_env.setenv("AISLE_VLM_API_KEY", "sk-vlm")
    get_settings.cache_clear()
    endpoint = image_endpoint_from_env()  # the process's settings
    assert endpoint is not None
    assert (endpoint.base_url, endpoint.model, endpoint.vlm_base_url, endpoint.vlm_model) == (
        "http://127.0.0.1:9000/v1", "sdxl-turbo", "http://127.0.0.1:9001/v1", "qwen2-vl")
    assert endpoint.api_key is not None
    assert endpoint.api_key.get_secret_value() == "sk-image"
    assert endpoint.vlm_key is not None
    assert endpoint.vlm_key.get_secret_value() == "sk-vlm"
    assert ImageEndpoint.from_env(Settings()) == endpoint


def test_env_without_a_vlm(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AISLE_IMAGE_BASE_URL", "http://127.0.0.1:9000/v1")
    clean_env.setenv("AISLE_IMAGE_MODEL", "sdxl-turbo")
    clean_env.setenv("AISLE_VLM_MODEL", "")  # empty counts as unset
    endpoint = image_endpoint_from_env(Settings())
    assert endpoint is not None
    assert endpoint.vlm_model is None
    assert endpoint.api_key is None


@pytest.mark.parametrize(("env", "expected"), [
    ({"AISLE_IMAGE_BASE_URL": "http://h/v1"}, "AISLE_IMAGE_MODEL is not; set it"),
    ({"AISLE_VLM_MODEL": "qwen2-vl"}, "AISLE_VLM_MODEL set but AISLE_IMAGE_BASE_URL is not"),
    ({"AISLE_IMAGE_BASE_URL": "localhost:9000", "AISLE_IMAGE_MODEL": "m"},
     "invalid AISLE_IMAGE_BASE_URL: expected an http"),
    ({"AISLE_IMAGE_BASE_URL": "http://h/v1", "AISLE_IMAGE_MODEL": "m",
      "AISLE_VLM_BASE_URL": "http://v/v1"}, "vlm_base_url is set but vlm_model is not"),
])
def test_bad_env(clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigurationError, match=expected):
        image_endpoint_from_env(Settings())
