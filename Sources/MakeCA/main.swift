print("make-ca")
