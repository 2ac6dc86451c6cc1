"""caesar-faas: the library every function, the runner and the local stack import.

Modules inside this package import each other with relative imports only: in an OpenFaaS image
the package lives at /home/app/function/caesar_faas and is imported as `function.caesar_faas`.
"""
