"""Models of the book: the β-VAE (chapter 1); hierarchical and SemafoVAE models follow."""
from .vae import ARCHITECTURES, BetaVAE, VAEConfig, VAEOutput, vae_loss

__all__ = ["ARCHITECTURES", "BetaVAE", "VAEConfig", "VAEOutput", "vae_loss"]
