"""Real/fake face datasets: discovery and decoding, `data prepare`, the built-in demo, the uint8 cache."""

# The built-in demo as `sweep` and `data demo` build it (harness.data.demo): images per class, side in
# pixels, seed. Small enough that the first command trains all eight architectures in a few CPU minutes;
# 20 images per class of each of the 21 photographs (harness.data.demo): 360 train, 80 val, 400 test.
DEMO = {"per_class": 420, "size": 40, "seed": 0}
# The most `data demo` builds (the paper's 5,000 per class four times, its 1024-pixel faces) and the seeds it takes:
# beyond, it fills a disk or the memory before it says anything.
DEMO_LIMITS = {"per_class": 20_000, "size": 1024, "seed": 2**32 - 1}
# In the demo's folder name: a demo built by an earlier recipe is not reused.
DEMO_VERSION = 3
# data prepare --near-duplicates: two images whose 64-bit difference hashes differ in at most this many bits
# are copies of one photograph (harness.data.groups; docs/science.md gives the distances measured).
NEAR_DUPLICATE_BITS = 6
# The demo's input size: 40 px times timm's usual crop fraction (0.875), so for most of the eight the
# cache's resize is the identity and the fingerprint reaches the network pixel for pixel (ResNet50's
# fraction is 0.95: its 40 px go to 37 first). An architecture that needs more (Xception 71,
# InceptionV3 75) gets its own minimum, from an upscaled image: the first command stays within a few
# CPU minutes. Synthetic inputs on a CPU take the same sizes (training.synthetic).
DEMO_IMAGE_SIZE = 35
# The demo's perturbed passes score 50 of its 400 test images (25 of each class, from the same ten
# photographs): five passes over all of them were a fifth of the first command's time, over 200 still a
# fifth of Xception's run, and over 100 a tenth of it, for figures the demo only illustrates.
DEMO_ROBUSTNESS_IMAGES = 50
