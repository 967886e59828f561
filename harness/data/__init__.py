"""Real/fake face datasets: discovery and decoding, `data prepare`, the built-in demo, the uint8 cache."""
