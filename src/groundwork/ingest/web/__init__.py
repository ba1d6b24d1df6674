"""Web sources: sitemaps, crawls from a start page and URL lists, fetched with httpx within limits
(``groundwork.config.WebSettings``), synced with conditional requests. See docs/sources.md."""
