"""The model zoo: the paper's architectures as a table of configs (registry), any name looked up (lookup), the
networks built over timm with the paper's head (models), NASNetMobile, and their preprocessing.
This package's own namespace stays light: the command line reads it without importing torch."""

# The largest input side a run may ask for: the paper's networks take 224-299 px; above this a batch of one
# fills a GPU (and a record asking for more is damaged, not a size to resize to).
MAX_IMAGE_SIZE = 2048
WEIGHTS_HELP = "'imagenet' (timm's pretrained weights, from the local cache), 'none' (random init) or a weights file"
# The Keras preprocessing mode the paper most likely fed every network (docs/science.md, "The paper's question").
PAPER_PROBABLE_MODE = "caffe"
# `--preprocessing paper`: each network with the Keras mode its Keras application uses (ModelSpec.keras_mode).
PAPER_PREPROCESSING = "paper"
# What the paper's Keras applications take, kept here (no torch) for the leaderboard's comparison:
# keras.applications' default input side, and the architectures whose timm weights are Keras' own, ported.
KERAS_INPUT_SIZE = {"ResNet50": 224, "VGG16": 224, "VGG19": 224, "DenseNet121": 224, "MobileNetV2": 224,
                    "Xception": 299, "NASNetMobile": 224, "InceptionV3": 299}
TIMM_WEIGHTS_ARE_KERAS = ("Xception",)

# --ablate-preprocessing: each network's own (timm) input, its Keras mode (the paper's), caffe's for all.
ABLATION = ("timm", PAPER_PREPROCESSING, PAPER_PROBABLE_MODE)
