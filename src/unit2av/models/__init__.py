"""Model families: vocoder, discriminators, face renderer, speaker encoder."""
