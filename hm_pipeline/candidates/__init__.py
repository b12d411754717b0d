"""Candidate sources: one protocol (`CandidateSource`), one registry, one contract test suite."""

from hm_pipeline.candidates.base import CANDIDATE_SCHEMA, CandidateSource, SourceContext
from hm_pipeline.candidates.heuristics import HEURISTIC_SOURCES
from hm_pipeline.candidates.learned import LEARNED_SOURCES
from hm_pipeline.candidates.similarity import SIMILARITY_SOURCES

REGISTRY: dict[str, type[CandidateSource]] = {
    cls.name: cls for cls in [*HEURISTIC_SOURCES, *SIMILARITY_SOURCES, *LEARNED_SOURCES]
}

__all__ = ["CANDIDATE_SCHEMA", "REGISTRY", "CandidateSource", "SourceContext"]
