"""Writes a plot (a PDF that embeds its creation time) and a model file into the repo."""

import os
import struct
import time

os.makedirs("plots", exist_ok=True)
weights = [0.5 * i for i in range(16)]
with open("model.bin", "wb") as f:
    f.write(struct.pack("16d", *weights))
with open(os.path.join("plots", "predict0.pdf"), "w") as f:
    f.write(f"%PDF-1.4\n% CreationDate (D:{time.time_ns()})\n%%EOF\n")
