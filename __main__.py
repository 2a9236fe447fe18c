"""What the Pulumi CLI runs: the program, as the package `infra`, from the project root.

The Python language host runs a project folder's `__main__.py` with the folder on sys.path;
running `infra` as a module from here keeps the sibling `components` package importable
(`main: infra/` would make infra/ the working directory and break that: pulumi#7360).
"""
import runpy

runpy.run_module("infra", run_name="__main__", alter_sys=True)
