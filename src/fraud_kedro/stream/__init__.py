"""Real-time scoring of a transaction stream (Redis Streams), through the API's scoring service.

* :mod:`.broker`: the source/sink interface, with Kafka consumer-group semantics;
* :mod:`.redis_broker`: its Redis Streams implementation;
* :mod:`.processing`: one micro-batch: validate, score in one call, results and dead letters;
* :mod:`.worker`: the consume -> score -> commit loop; :mod:`.runner` assembles and runs it;
* :mod:`.telemetry`: ``fraud_stream_*`` metrics, ``/metrics`` and ``/health``;
* :mod:`.producer`: replays transactions into the stream.

``docs/streaming.md`` describes the delivery semantics and the settings.
"""
