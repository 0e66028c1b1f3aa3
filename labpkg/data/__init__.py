"""Data: synthetic shapes, your own image folders, Oxford-IIIT Pet, the loading pipeline."""
