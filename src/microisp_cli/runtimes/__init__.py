"""The runtimes that run the network (see ``base.SegmentRunner``); each imports its engine lazily."""

#: Backend names, the default first: ``openvino`` (built from the weights, no TensorFlow),
#: ``tf`` (TensorFlow, the training framework) and ``tflite`` (LiteRT, runs an exported file).
BACKENDS = ("openvino", "tf", "tflite")
