"""Public market data per pair: L2 book views with checksums, candles, ticker, trades tape and spread."""
