"""Real/fake face datasets: discovery and decoding, `data prepare`, the built-in demo, the uint8 cache."""

# The built-in demo as `sweep` and `data demo` build it (harness.data.demo): images per class, side in
# pixels, seed. Small enough that the first command trains all eight architectures in a few CPU minutes;
# 20 images per class of each of the 21 photographs (harness.data.demo): 360 train, 80 val, 400 test.
DEMO = {"per_class": 420, "size": 40, "seed": 0}
# In the demo's folder name: a demo built by an earlier recipe is not reused.
DEMO_VERSION = 3
# data prepare --near-duplicates: two images whose 64-bit difference hashes differ in at most this many bits
# are copies of one photograph (harness.data.groups; docs/science.md gives the distances measured).
NEAR_DUPLICATE_BITS = 6
