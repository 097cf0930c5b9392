"""Networks: architectures, weight initialisation, pretrained loading."""
