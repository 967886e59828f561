"""The model zoo: the paper's architectures over timm (models), NASNetMobile, and their preprocessing.
This package's own namespace stays light: the command line reads it without importing torch."""

WEIGHTS_HELP = "'imagenet' (timm's pretrained weights, from the local cache), 'none' (random init) or a weights file"
# The Keras preprocessing mode the paper most likely fed every network (README, "The paper's question").
PAPER_PROBABLE_MODE = "caffe"
