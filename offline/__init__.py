"""The offline proof of the program: its mock engine, the render of every stack, the documents
generated from the code (architecture, config reference), the connectivity analysis of the
rendered network policies and the benchmarks.

It imports the program (`infra`) and runs it under Pulumi's mocks; the program never imports it,
so `pulumi up` runs none of this.
"""
