"""Video datasets (synthetic shapes, a folder of videos), clip sampling and the token cache."""
