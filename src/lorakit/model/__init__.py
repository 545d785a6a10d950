"""Model loading below every stage that uses a model: the base from the store, the PEFT adapter put on it,
finding a trained adapter, the device's precision, and the one sorted-batch forward loop.

Tasks decide which model class and PEFT task type; this package only carries that choice out.
"""
