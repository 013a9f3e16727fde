"""Layer 6, what the app runs and shows, without Streamlit: background training jobs (`jobs`,
`device_queue`), the data the pages share (`shared_data`), views of a model as arrays (`views`), their
Plotly figures (`plots`) and the Compare page's verdict (`comparison`)."""
