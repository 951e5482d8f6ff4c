"""The bundled weights (installed as microisp_cli.weights_data): NAME.npz + NAME.json."""
