"""A client for an OpenAI-compatible image endpoint, and for a vision-language model
that describes what it drew.

The outfit pipeline draws its outfits when an image endpoint is configured and skips
the images otherwise; POAC's vision-enhanced loop (arXiv 2404.11589) also asks a
vision-language model (VLM) what a generated image shows. Both calls are plain OpenAI
wire requests, so a hosted API, a local diffusion server with an OpenAI-style route or
a stub (`aisle.testing.image_stub_server`) all serve them:

- `generate_image`: `POST {base_url}/images/generations`, one image, as base64 (or a
  URL, when the server answers with one);
- `describe_image`: `POST {vlm_base_url or base_url}/chat/completions` with the image as
  an `image_url` content part (a `data:` URI, or the server's URL).

Reliability: an HTTP 429 is retried with back-off (tenacity), waiting what the
server's `Retry-After` asks while that is at most `max_retry_after_s`; everything else
(refused or dropped connections, timeouts, other statuses, bodies that are not the
OpenAI shape) raises `ImageEndpointError` at once: an image takes long to make and a
failing image server seldom recovers within a back-off, and the graph records the
failure and goes on without the picture.

Example:
    >>> endpoint = ImageEndpoint(base_url="http://127.0.0.1:9000/v1/", model="sdxl-turbo")
    >>> endpoint.base_url, endpoint.size, endpoint.vlm_url
    ('http://127.0.0.1:9000/v1', '512x512', 'http://127.0.0.1:9000/v1')
    >>> import asyncio
    >>> image = asyncio.run(generate_image(endpoint, "a deerstalker hat"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aisle.errors import AisleError, ConfigurationError
from aisle.llm._retry import retry_after_seconds
from aisle.settings import Settings, get_settings

__all__ = ["GeneratedImage", "ImageEndpoint", "ImageEndpointError", "describe_image",
           "generate_image", "image_endpoint_from_env"]

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0
"""Longest exponential back-off between two 429s without a `Retry-After`."""


class ImageEndpointError(AisleError):
    """An image or vision endpoint could not be reached or gave no usable answer.

    Attributes:
        url: the URL that was requested.
        status: the HTTP status of an error answer (429, 500, ...), or of a 2xx answer
            that is not JSON; None when it did not answer, or answered JSON without the
            expected fields.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ImageEndpoint(BaseModel):
    """Where images are made and described, and how patiently.

    Attributes:
        base_url: the OpenAI-compatible API root, e.g. `http://127.0.0.1:9000/v1`
            (a trailing slash is dropped).
        model: the image model's name, as the server knows it.
        api_key: sent as a bearer token to `base_url` (and to the VLM when it has no URL
            of its own); None sends none.
        timeout_s: seconds one request may take.
        size: the image size asked for, `WIDTHxHEIGHT` or `auto`.
        vlm_model: the vision-language chat model that describes images; None: no
            vision loop (`describe_image` refuses).
        vlm_base_url: the VLM's API root; None: `base_url`.
        vlm_api_key: the key for `vlm_base_url`; None there: no key (the image key is
            never sent to another server).
        max_retries: retries after a 429 (rate limited), with back-off.
        max_retry_after_s: longest `Retry-After` honoured; a 429 asking for more fails.
        retry_initial_wait_s: first back-off after a 429 without `Retry-After` (doubled
            each time, with up to as much random jitter).

    Raises:
        pydantic.ValidationError: a URL that is not http(s), an empty model, a size that
            is not `WIDTHxHEIGHT`, or a `vlm_base_url` without `vlm_model`.

    Example:
        >>> ImageEndpoint(base_url="http://h/v1", model="m", size="1024x768").size
        '1024x768'
        >>> ImageEndpoint(base_url="http://h/v1", model="m", api_key="k").api_key
        SecretStr('**********')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    timeout_s: float = Field(120.0, gt=0)
    size: str = Field("512x512", pattern=r"^(?:[1-9][0-9]*x[1-9][0-9]*|auto)$")
    vlm_model: str | None = Field(None, min_length=1)
    vlm_base_url: str | None = None
    vlm_api_key: SecretStr | None = None
    max_retries: int = Field(3, ge=0, le=10)
    max_retry_after_s: float = Field(30.0, ge=0)
    retry_initial_wait_s: float = Field(1.0, ge=0)

    @field_validator("base_url", "vlm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:9000/v1, "
                             f"got {value!r}")
        return url

    @model_validator(mode="after")
    def _vlm_complete(self) -> ImageEndpoint:
        if self.vlm_base_url is not None and self.vlm_model is None:
            raise ValueError("vlm_base_url is set but vlm_model is not; name the "
                             "vision-language model too (AISLE_VLM_MODEL)")
        return self

    @property
    def vlm_url(self) -> str:
        """The API root `describe_image` posts to."""
        return self.vlm_base_url or self.base_url

    @property
    def vlm_key(self) -> SecretStr | None:
        """The key `describe_image` sends: `vlm_api_key`, or `api_key` when the VLM is
        served from `base_url`."""
        if self.vlm_api_key is not None:
            return self.vlm_api_key
        return self.api_key if self.vlm_url == self.base_url else None

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> ImageEndpoint | None:
        """The endpoint the settings configure; None when `AISLE_IMAGE_BASE_URL` is unset.

        Reads `AISLE_IMAGE_BASE_URL`, `AISLE_IMAGE_MODEL`, `AISLE_IMAGE_API_KEY`,
        `AISLE_VLM_BASE_URL`, `AISLE_VLM_MODEL` and `AISLE_VLM_API_KEY` (through
        `aisle.settings.Settings`).

        Args:
            settings: the settings to read; None reads the process's (`get_settings()`).

        Raises:
            ConfigurationError: a base URL without its model, a VLM setting without the
                image endpoint, or a value that does not validate; the message names
                the variable.

        Example:
            >>> ImageEndpoint.from_env(Settings(image_base_url=None)) is None
            True
            >>> ImageEndpoint.from_env(Settings(image_base_url="http://h:9000/v1",
            ...                                 image_model="sd")).model
            'sd'
        """
        s = settings or get_settings()
        if s.image_base_url is None:
            vlm_set = [name for name, value in (("AISLE_VLM_BASE_URL", s.vlm_base_url),
                                                ("AISLE_VLM_MODEL", s.vlm_model))
                       if value is not None]
            if vlm_set:
                raise ConfigurationError(f"{' and '.join(vlm_set)} set but AISLE_IMAGE_BASE_URL "
                                         "is not; the VLM describes generated images, so "
                                         "set the image endpoint too (or unset the VLM)")
            return None
        if s.image_model is None:
            raise ConfigurationError("AISLE_IMAGE_BASE_URL is set but AISLE_IMAGE_MODEL is "
                                     "not; set it to the image model's name")
        try:
            return cls(base_url=s.image_base_url, model=s.image_model, api_key=s.image_api_key,
                       vlm_model=s.vlm_model, vlm_base_url=s.vlm_base_url,
                       vlm_api_key=s.vlm_api_key)
        except ValidationError as e:
            first = e.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            var = _ENV_OF.get(field, "the image settings")
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigurationError(f"invalid {var}: {message}") from e


_ENV_OF = {"base_url": "AISLE_IMAGE_BASE_URL", "model": "AISLE_IMAGE_MODEL",
           "vlm_base_url": "AISLE_VLM_BASE_URL", "vlm_model": "AISLE_VLM_MODEL"}


def image_endpoint_from_env(settings: Settings | None = None) -> ImageEndpoint | None:
    """The configured image endpoint, or None when images are off (`ImageEndpoint.from_env`).

    Example:
        >>> image_endpoint_from_env(Settings(image_base_url=None, vlm_model=None)) is None
        True
    """
    return ImageEndpoint.from_env(settings)


class GeneratedImage(BaseModel):
    """One generated image: its bytes, or the URL the server put it at.

    In JSON the bytes are base64, so the image can sit in graph state.

    Attributes:
        png: the image file's bytes (PNG from most servers; `media_type` says what the
            bytes are); None when the server answered with a URL only.
        url: where the server put the image, when it answered with a URL.
        revised_prompt: the prompt the server actually drew, when it rewrote ours.

    Raises:
        pydantic.ValidationError: neither `png` nor `url`.

    Example:
        >>> image = GeneratedImage(png=b"\\x89PNG\\r\\n\\x1a\\n...")
        >>> image.media_type, image.data_uri()[:30]
        ('image/png', 'data:image/png;base64,iVBORw0K')
        >>> GeneratedImage.model_validate_json(image.model_dump_json()) == image
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64",
                              val_json_bytes="base64")

    png: bytes | None = None
    url: str | None = None
    revised_prompt: str | None = None

    @model_validator(mode="after")
    def _has_image(self) -> GeneratedImage:
        if self.png is None and self.url is None:
            raise ValueError("a generated image needs its bytes (png) or a url")
        return self

    @property
    def media_type(self) -> str:
        """The bytes' MIME type from their signature (PNG, JPEG, WebP, GIF), else PNG."""
        data = self.png or b""
        if data.startswith(b"\xff\xd8\xff"):
            return "image/jpeg"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "image/webp"
        if data.startswith((b"GIF87a", b"GIF89a")):
            return "image/gif"
        return "image/png"

    def data_uri(self) -> str:
        """The image as a VLM message takes it: a base64 `data:` URI, or the server's URL
        when there are no bytes."""
        if self.png is None:
            assert self.url is not None  # the validator guarantees one of them
            return self.url
        return f"data:{self.media_type};base64,{base64.b64encode(self.png).decode('ascii')}"


async def generate_image(endpoint: ImageEndpoint, prompt: str) -> GeneratedImage:
    """Draw one image for `prompt`.

    Sends `{"model", "prompt", "n": 1, "size", "response_format": "b64_json"}` to
    `{base_url}/images/generations` and reads `data[0]`: its `b64_json` (decoded) or its
    `url`, and `revised_prompt`.

    Args:
        endpoint: where and how to ask.
        prompt: what to draw.

    Returns:
        The image.

    Raises:
        ConfigurationError: `prompt` is empty.
        ImageEndpointError: the server cannot be reached or did not answer in time,
            answered a status other than 2xx (429 after the retries), or a body without
            an image in `data[0]`.

    Example:
        >>> import asyncio
        >>> from aisle.testing import image_stub_server
        >>> with image_stub_server() as stub:
        ...     endpoint = ImageEndpoint(base_url=stub.base_url, model="stub-image")
        ...     image = asyncio.run(generate_image(endpoint, "a red scarf"))
        >>> image.png[:4], stub.requests[0].body["prompt"]
        (b'\\x89PNG', 'a red scarf')
    """
    if not prompt.strip():
        raise ConfigurationError("an image prompt must not be empty; say what to draw")
    url = f"{endpoint.base_url}/images/generations"
    body = {"model": endpoint.model, "prompt": prompt, "n": 1, "size": endpoint.size,
            "response_format": "b64_json"}
    payload = await _post_json(endpoint, url, body, endpoint.api_key, "AISLE_IMAGE_BASE_URL")
    return _image_of(payload, url)


async def describe_image(endpoint: ImageEndpoint, image: GeneratedImage, question: str) -> str:
    """Ask the vision-language model a question about an image.

    Sends one user message to `{vlm_base_url or base_url}/chat/completions`: the
    question as a text part, then the image as an `image_url` part (`data:` URI of its
    bytes, or its URL), at temperature 0.

    Args:
        endpoint: where and how to ask; `vlm_model` must be set.
        image: the image, e.g. from `generate_image`.
        question: what to ask, e.g. "Describe the outfit in this picture."

    Returns:
        The model's answer, stripped.

    Raises:
        ConfigurationError: no `vlm_model`, or an empty question.
        ImageEndpointError: the server cannot be reached or did not answer in time,
            answered a status other than 2xx (429 after the retries), or a body without
            text in `choices[0].message.content`.

    Example:
        >>> import asyncio
        >>> from aisle.testing import image_stub_server
        >>> with image_stub_server(description="A tweed cape.") as stub:
        ...     endpoint = ImageEndpoint(base_url=stub.base_url, model="m", vlm_model="vlm")
        ...     asyncio.run(describe_image(endpoint, GeneratedImage(png=b"x"), "What is it?"))
        'A tweed cape.'
    """
    if endpoint.vlm_model is None:
        raise ConfigurationError("describing an image needs a vision-language model; set "
                                 "vlm_model on the ImageEndpoint (AISLE_VLM_MODEL)")
    if not question.strip():
        raise ConfigurationError("the question about the image must not be empty")
    url = f"{endpoint.vlm_url}/chat/completions"
    body = {
        "model": endpoint.vlm_model,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": image.data_uri()}},
        ]}],
        "temperature": 0,
    }
    setting = "AISLE_VLM_BASE_URL" if endpoint.vlm_base_url else "AISLE_IMAGE_BASE_URL"
    payload = await _post_json(endpoint, url, body, endpoint.vlm_key, setting)
    return _text_of(payload, url)


class _RateLimited(Exception):
    """A 429, raised inside the retry loop only."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP 429: {_detail(response)}")
        self.response = response  # read by `retry_after_seconds`
        try:
            self.retry_after = retry_after_seconds(self)
        except (ValueError, TypeError):  # neither seconds nor an HTTP date: no hint
            self.retry_after = None


async def _post_json(endpoint: ImageEndpoint, url: str, body: dict[str, Any],
                     key: SecretStr | None, setting: str) -> Any:
    """POST `body` as JSON and return the parsed JSON answer, retrying 429s."""
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}

    def honourable(exc: BaseException) -> bool:
        if not isinstance(exc, _RateLimited):
            return False
        return exc.retry_after is None or exc.retry_after <= endpoint.max_retry_after_s

    backoff = wait_exponential_jitter(multiplier=endpoint.retry_initial_wait_s, max=_MAX_BACKOFF_S,
                                      jitter=endpoint.retry_initial_wait_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(backoff(state))

    def before_sleep(state: RetryCallState) -> None:
        pause = state.next_action.sleep if state.next_action else 0.0
        logger.warning("%s rate-limited the request (HTTP 429, attempt %d); retrying in %.2fs",
                       url, state.attempt_number, pause)

    retrying = AsyncRetrying(retry=retry_if_exception(honourable),
                             stop=stop_after_attempt(endpoint.max_retries + 1), wait=wait,
                             before_sleep=before_sleep, reraise=True)
    try:
        async with httpx.AsyncClient(timeout=endpoint.timeout_s) as client:
            async for attempt in retrying:
                with attempt:
                    return await _post_once(client, url, body, headers, endpoint, setting)
    except _RateLimited as e:
        attempts = retrying.statistics.get("attempt_number", 1)
        if e.retry_after is not None and e.retry_after > endpoint.max_retry_after_s:
            message = (f"{url} answered HTTP 429 asking to retry after {e.retry_after:g}s, "
                       f"longer than max_retry_after_s={endpoint.max_retry_after_s:g}; try "
                       f"again later or raise max_retry_after_s")
        else:
            message = (f"{url} still answered HTTP 429 (rate limited) after {attempts} "
                       f"attempt(s); lower the request rate or raise max_retries")
        raise ImageEndpointError(message, url=url, status=429) from e
    raise AssertionError("unreachable: tenacity re-raises the last error")


async def _post_once(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                     headers: dict[str, str], endpoint: ImageEndpoint, setting: str) -> Any:
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.TimeoutException as e:
        raise ImageEndpointError(f"{url} did not answer within {endpoint.timeout_s:g}s; raise "
                                 f"the endpoint's timeout_s or check the server", url=url) from e
    except httpx.HTTPError as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ImageEndpointError(f"cannot reach {url} ({reason}); is the server running? "
                                 f"check {setting}", url=url) from e
    status = response.status_code
    if status == 429:
        raise _RateLimited(response)
    if not 200 <= status < 300:
        raise ImageEndpointError(f"{url} answered HTTP {status}: {_detail(response)}",
                                 url=url, status=status)
    try:
        return response.json()
    except ValueError as e:
        raise ImageEndpointError(f"{url} answered HTTP {status} with a body that is not JSON: "
                                 f"{_snippet(response.text)!r}", url=url, status=status) from e


def _image_of(payload: Any, url: str) -> GeneratedImage:
    """The image in an OpenAI images response."""
    items = payload.get("data") if isinstance(payload, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    if not isinstance(first, dict):
        raise _malformed(url, "no data[0] object", payload)
    b64, link, revised = first.get("b64_json"), first.get("url"), first.get("revised_prompt")
    if b64 is None and link is None:
        raise _malformed(url, "data[0] has neither b64_json nor url", payload)
    png = None
    if b64 is not None:
        if not isinstance(b64, str):
            raise _malformed(url, "data[0].b64_json is not a string", payload)
        if b64.startswith("data:"):  # some servers send a whole data URI
            b64 = b64.partition(",")[2]
        try:
            png = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise _malformed(url, f"data[0].b64_json is not base64 ({e})", None) from e
        if not png:
            raise _malformed(url, "data[0].b64_json is empty", None)
    if link is not None and not isinstance(link, str):
        raise _malformed(url, "data[0].url is not a string", payload)
    return GeneratedImage(png=png, url=link,
                          revised_prompt=revised if isinstance(revised, str) else None)


def _text_of(payload: Any, url: str) -> str:
    """The answer text in an OpenAI chat completion."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _malformed(url, "no choices[0].message.content", payload) from None
    if isinstance(content, list):  # content parts, as some servers answer
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise _malformed(url, "choices[0].message.content is empty", payload)
    return content.strip()


def _malformed(url: str, problem: str, payload: Any) -> ImageEndpointError:
    shown = f": {_snippet(str(payload))!r}" if payload is not None else ""
    return ImageEndpointError(f"{url} answered, but not in the OpenAI shape: {problem}{shown}",
                              url=url)


def _detail(response: httpx.Response) -> str:
    """The error message of an error answer: OpenAI's `error.message`, else the body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error or data.get("detail")
        if isinstance(message, str) and message.strip():
            return _snippet(message)
    return _snippet(response.text) or "(empty body)"


def _snippet(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


