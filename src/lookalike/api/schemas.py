"""Request and response bodies of the REST API (they document it at /docs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field, model_serializer, model_validator

Crop = tuple[float, float, float, float]
RERANK_HELP = ("`qe` (default): re-order the results by query expansion (the top results are mixed into the query and "
               "the library is searched again; scores stay the cosine to the query); `none`: the plain order.")
CROP_HELP = "Search only this region of the query image: [x0, y0, x1, y1] as fractions (0..1) of its width and height."


VERIFY_HELP = ("Find this photo: the top candidates are checked with keypoints (ORB + RANSAC) and those showing the "
               "same picture (a crop, rotated, half covered, re-lit) move to the top, each with `inliers`. One query image.")
VERIFY_DEPTH_HELP = "Candidates checked by `verify` (1..200, default 20); setting it turns `verify` on."
MAX_QUERY_IMAGES = 20  # positives plus negatives in one search: each is a stored vector or a model run
QueryRef = Annotated[int | str, Field(description='An indexed image id, or "item:SKU" for a catalogue item.')]


class SearchBody(BaseModel):
    """JSON search: exactly one of `id` (an indexed image, "more like this"), `ids` (several,
    "more like these", optionally weighted) or `url`; `not_ids` are examples of what not to find."""

    id: Optional[int] = Field(None, ge=0, le=2**63 - 1, description="Indexed image id; it never finds itself.")
    ids: Optional[list[QueryRef]] = Field(None, description='Several query images (ids or "item:SKU"): images like all of them.')
    not_ids: Optional[list[QueryRef]] = Field(None, description="Images (ids or \"item:SKU\") the results should NOT look like.")
    weights: Optional[list[float]] = Field(None, description="How much each of `ids` counts (positive numbers, one per id).")
    url: Optional[str] = Field(None, description="http(s) URL of an image the server downloads.")
    k: Optional[int] = Field(None, ge=1, le=1000, description="Number of results (default 10).")
    min_score: Optional[float] = Field(None, ge=-1, le=1, description="Drop results below this cosine similarity.")
    min_confidence: Optional[float] = Field(None, ge=0, le=1, description="Drop results below this confidence.")
    crop: Optional[Crop] = Field(None, description=CROP_HELP)
    rerank: Optional[str] = Field(None, max_length=20, description=RERANK_HELP)
    q: Optional[str] = Field(None, max_length=500, description="Keep only images tagged with an ImageNet label naming this.")
    text: Optional[str] = Field(None, max_length=500, description="Same as `q`.")
    under: Optional[str] = Field(None, max_length=4096, description="Only images under this folder (on the server).")
    since: Optional[str] = Field(None, max_length=40, description="Only images taken (else modified) on or after this date.")
    until: Optional[str] = Field(None, max_length=40, description="Only images taken (else modified) on or before this date.")
    where: Optional[str] = Field(None, max_length=2000, description="Filter on the images' fields (docs/filters.md).")
    window: Optional[str] = Field(None, max_length=40, description="Scans: the window of the query and of the thumbnails "
                                                                   "(brain, lung, bone, soft, auto or CENTRE,WIDTH).")
    group: Optional[str] = Field(None, max_length=20, description="`series`: one result per scan series.")
    verify: Optional[bool] = Field(None, description=VERIFY_HELP)
    verify_depth: Optional[int] = Field(None, description=VERIFY_DEPTH_HELP)

    @model_validator(mode="after")
    def _one_source(self) -> SearchBody:
        if sum(v is not None for v in (self.id, self.ids, self.url)) != 1:
            raise ValueError('give exactly one of "id", "ids" or "url"')
        if self.ids is not None and not self.ids:
            raise ValueError('"ids" is empty: give at least one image id')
        if self.weights is not None and self.ids is None:
            raise ValueError('"weights" go with "ids", one per id')
        if self.url is not None and self.not_ids:
            raise ValueError('"not_ids" go with "id" or "ids", not "url"')
        if len(self.ids or ()) + len(self.not_ids or ()) > MAX_QUERY_IMAGES:
            raise ValueError(f"at most {MAX_QUERY_IMAGES} query images (ids plus not_ids) in one search")
        self.ids = None if self.ids is None else [check_ref(r) for r in self.ids]
        self.not_ids = None if self.not_ids is None else [check_ref(r) for r in self.not_ids]
        return self

    def positives(self) -> list[int | str]:
        return list(self.ids) if self.ids is not None else [self.id] if self.id is not None else []


def check_ref(ref: int | str) -> int | str:
    """An id (0..2**63-1), "id:N" or "item:SKU": never a path or URL on the server."""
    if isinstance(ref, str) and ref.startswith("id:") and ref[3:].isdigit():
        ref = int(ref[3:])
    if isinstance(ref, int):
        if not 0 <= ref <= 2**63 - 1:
            raise ValueError(f"image id {ref} is out of range")
        return ref
    if not ref.startswith("item:") or len(ref) <= 5 or len(ref) > 500:
        raise ValueError(f'{ref[:80]!r} is not an image id or "item:SKU"')
    return ref


# Keys that only scan searches set (window, group=series): left out when unset, so the shape of
# every other search answer stays what clients already parse.
SCAN_ONLY_HIT = ("series", "series_entries", "inliers")  # inliers: only a verified search sets it
SCAN_ONLY_RESPONSE = ("group", "window")


def _without_none(data: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        for key in keys:
            if data.get(key, 0) is None:
                del data[key]
    return data


class Hit(BaseModel):
    rank: int
    id: int
    path: str
    score: float = Field(description="Cosine similarity to the query, descending.")
    confidence: Optional[float] = Field(None, ge=0, le=1, description=(
        "The probability that this image shows the same thing as the query (same object, product class or "
        "photo), calibrated per model build; null for a model without a confidence curve."))
    name: str = Field(description="File name, for display.")
    fields: dict[str, Any] = Field(default_factory=dict, description="The image's metadata (folder, name, format, ...).")
    item: Optional[str] = Field(None, description="The catalogue item's id (docs/catalogue.md); null for an indexed file.")
    thumb_url: str
    image_url: str
    series: Optional[str] = Field(None, description="group=series: the series (SeriesInstanceUID, or the file of a "
                                                    "series without one); this hit is its best-matching slice.")
    series_entries: Optional[int] = Field(None, description="group=series: slices of this series among the candidates.")
    inliers: Optional[int] = Field(None, description="verify=true: keypoint matches consistent with one transform between "
                                                     "the query and this image (verified hits, 15 or more, come first).")

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> Any:
        return _without_none(handler(self), SCAN_ONLY_HIT)


class SearchResponse(BaseModel):
    query: str
    model: str
    took_ms: float = Field(description="Time the engine spent (decoding, model, search), server side.")
    crop: Optional[Crop] = None
    verdict: Optional[str] = Field(None, description=(
        '"good match" when the best result\'s confidence reaches `good_match`, "no good match" otherwise; '
        "null for word search (its scores are the classifier's probabilities) and uncalibrated models."))
    good_match: Optional[float] = Field(None, description="The confidence a result needs to be a good match.")
    group: Optional[str] = Field(None, description="`series` when the results are one per series.")
    window: Optional[str] = Field(None, description="The window asked for (scans), as the library would store it.")
    results: list[Hit]

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> Any:
        return _without_none(handler(self), SCAN_ONLY_RESPONSE)


class DuplicateMember(BaseModel):
    id: int
    path: str
    name: str
    score: float = Field(description="Cosine similarity to the group's keeper, its first member (1.0 for itself).")
    width: int
    height: int
    size: int
    keep: bool = Field(description="The image of its group the keep policy keeps.")
    match: Optional[str] = Field(description="How it matches the keeper: exact, near or similar; null for the keeper.")
    thumb_url: str
    image_url: str


class DuplicateGroup(BaseModel):
    group: int
    tier: str = Field(description="exact, near or similar.")
    members: list[DuplicateMember] = Field(description="The keeper first (see keep_policy), then the others.")


class Duplicates(BaseModel):
    images: int = Field(description="Images examined.")
    thresholds: dict[str, float]
    keep_policy: str = Field(description="Criteria choosing each group's keeper, in order (e.g. resolution,oldest,path).")
    counts: dict[str, int] = Field(description="Groups per tier.")
    seconds: float
    groups: list[DuplicateGroup]
    unreadable: list[str] = Field(description="Files gone or unreadable when checking near-duplicates.")


class ResolveGroup(BaseModel):
    keep: int = Field(ge=0, le=2**63 - 1, description="The image kept (never moved or trashed).")
    remove: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] = Field(min_length=1, max_length=10_000,
                                                                   description="Images to set aside.")


class ResolveBody(BaseModel):
    """Keep one image per group and set the others aside: `move` puts them in the library's
    `set-aside` folder (sub-folders mirror where they were), `trash` in the system trash.
    Both are undone with `lookalike duplicates --undo LOG`, LOG being the `log` answered."""

    action: Literal["move", "trash"]
    groups: list[ResolveGroup] = Field(min_length=1, max_length=10_000)
    dry_run: bool = Field(False, description="Only say what would happen.")


class ResolveAction(BaseModel):
    id: int
    path: str
    keeper: int
    dest: Optional[str] = Field(None, description="Where a move put it; null for the trash.")


class Skipped(BaseModel):
    path: str
    reason: str


class Resolved(BaseModel):
    mode: str
    dry_run: bool
    actions: list[ResolveAction] = Field(description="Done (or, on a dry run, planned).")
    skipped: list[Skipped] = Field(description="Left alone: changed or gone since indexed, or could not be moved.")
    log: Optional[str] = Field(description="The undo log on the server (null on a dry run or when nothing was done).")
    bytes: int = Field(description="Total size of the files set aside.")
    set_aside: Optional[str] = Field(None, description="The folder moved images went to.")


class Image(BaseModel):
    id: int
    path: str
    name: str
    sha256: str
    size: int = Field(description="File size in bytes.")
    mtime: float
    width: int
    height: int
    tags: list[tuple[str, float]] = Field(description="Top ImageNet labels with probabilities.")
    added: float
    fields: dict[str, Any] = Field(default_factory=dict, description=(
        "The image's metadata, filterable with `where`: file facts, media (image|video), date, EXIF (taken, make, "
        "camera, lens, orientation, lat, lon), a video frame's video_time, duration, frame_index."))
    thumb_url: str
    image_url: str
    similar_url: str


class ImagePage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[Image]


class Stats(BaseModel):
    library: str
    store: str
    images: int
    model: str
    dim: int
    size_bytes: int
    created: Optional[str]
    max_upload_bytes: int
    writes_need_key: bool
    url_queries: bool
    verify_unavailable: Optional[str] = Field(
        None, description="Why `verify=true` cannot run on this server (OpenCV is not installed), or null when it can.")


class Deleted(BaseModel):
    deleted: int
    file_removed: bool = Field(description="True when the file was an upload the server owned and is now gone too.")


class Health(BaseModel):
    status: str
    images: int


class Error(BaseModel):
    detail: str
