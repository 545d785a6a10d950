"""Request and response bodies. Built from the settings so that /docs shows the real limits."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def _not_blank(text: str) -> str:
    # Training drops such rows as bad; a prediction for no words at all would only be the bias.
    if not text.strip():
        raise PydanticCustomError("empty_text", "empty or only whitespace")
    return text


def _well_formed(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); the tokenizer cannot encode them: make them U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Prediction(BaseModel):
    text: str
    label: str
    probs: dict[str, float]


class ClassifyResponse(BaseModel):
    adapter: str
    results: list[Prediction]


class AdapterOut(BaseModel):
    name: str
    labels: list[str]
    base: str
    max_length: int


class AdaptersOut(BaseModel):
    base: str
    adapters: list[AdapterOut]


class LoadAdapter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME, description="Name of an adapter installed in the store (lorakit list).")


def classify_request(max_texts: int, max_chars: int) -> type[BaseModel]:
    Text = Annotated[str, Field(max_length=max_chars), AfterValidator(_not_blank), AfterValidator(_well_formed)]

    class ClassifyRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        adapter: str | None = Field(None, min_length=1, max_length=100,
                                    description="A loaded adapter (GET /v1/adapters); may be left out when "
                                                "exactly one is loaded.")
        texts: list[Text] = Field(min_length=1, max_length=max_texts, description="Texts to classify.")

    return ClassifyRequest
