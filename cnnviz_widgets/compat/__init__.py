"""Compatibility layers that let code written for older libraries run on cnnviz_widgets."""
