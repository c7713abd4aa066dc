"""Results files into figures and tables: nothing here imports the library that made them."""
