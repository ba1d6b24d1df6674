"""Index stage: the embedder, the embedding cache, the Store protocol and the embedded LanceDB store."""

from groundwork.index.embedder import Embedder, SentenceTransformerEmbedder, load_embedder
from groundwork.index.store import Store

__all__ = ["Embedder", "SentenceTransformerEmbedder", "Store", "load_embedder"]
