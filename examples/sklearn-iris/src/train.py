"""Train a logistic-regression classifier on iris; save the model, its metrics, and log it."""

import argparse
import json
import pickle
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--iris-csv", required=True)
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--test-size", type=float, default=0.25)
args = parser.parse_args()

frame = pd.read_csv(args.iris_csv)
features = frame.drop(columns=["species"])
target = frame["species"]
x_train, x_test, y_train, y_test = train_test_split(
    features, target, test_size=args.test_size, random_state=42, stratify=target
)
print(f"training on {len(x_train)} rows, testing on {len(x_test)}; C={args.C}")

model = LogisticRegression(C=args.C, max_iter=500)
model.fit(x_train, y_train)
predictions = model.predict(x_test)
metrics = {
    "accuracy": round(float(accuracy_score(y_test, predictions)), 4),
    "f1_macro": round(float(f1_score(y_test, predictions, average="macro")), 4),
    "C": args.C,
    "train_rows": len(x_train),
    "test_rows": len(x_test),
}
print(json.dumps(metrics))
# In a Mill (or Azure ML) job this logs to the job's own run: MLFLOW_RUN_ID is set for us.
mlflow.log_params({"C": args.C, "test_size": args.test_size})
mlflow.log_metrics({"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]})

outputs = Path("outputs")
outputs.mkdir(exist_ok=True)
with (outputs / "model.pkl").open("wb") as f:
    pickle.dump(model, f)
(outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))
print("saved outputs/model.pkl and outputs/metrics.json")

# The MLflow model, with an input example: `mill model create --type mlflow_model --path
# azureml://jobs/<job>/outputs/artifacts/paths/model` registers it from the job.
mlflow.sklearn.log_model(model, "model", input_example=x_test.head(3))
print("logged the MLflow model 'model'")
