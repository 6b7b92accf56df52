"""The deployment pipeline and what it needs to run one deployment."""
