"""What a user runs on their side against an endpoint: the batch client, its report, the deployer.

The worker never imports this package and the image does not hold it. ``python -m
scripts.submit_batch`` runs ``client.batch`` (inputs from ``client.inputs``, the report from
``client.report``) and ``python -m scripts.deploy`` runs ``client.deploy``.
"""
