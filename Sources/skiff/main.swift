print("skiff")
