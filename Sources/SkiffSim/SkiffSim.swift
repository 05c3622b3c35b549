import Skiff
