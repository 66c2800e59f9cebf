"""The tune stage: MetaSchedule search over template / generated spaces with XGBoost, measured
locally or over
RPC, into a resumable log. `api.tune` is the command's plain function."""
