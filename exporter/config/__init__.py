"""The config: the YAML file and the environment, loaded and validated; what is wrong, said in
plain words."""
